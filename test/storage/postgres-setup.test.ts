import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listMigrations } from '../../src/storage/sqlite/migrate.js';
import { pgConfig, toParam } from '../../src/storage/postgres/connection.js';
import { migratePostgres, POSTGRES_MIGRATIONS_DIR } from '../../src/storage/postgres/migrate.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';

// A server and a process whose time zones are far from UTC (and from each other), so a timestamp
// read or written in local time shows.
let server: PostgresServer;
const dir = mkdtempSync(join(tmpdir(), 'orderflow-pgsetup-'));
const tz = process.env.TZ;
beforeAll(async () => {
  process.env.TZ = 'America/New_York';
  server = await startPostgres({ settings: { timezone: 'Pacific/Auckland' } });
});
afterAll(async () => {
  if (tz === undefined) delete process.env.TZ;
  else process.env.TZ = tz;
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client(pgConfig(url));
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

describe('PostgreSQL migrations', () => {
  it('applies every migration once and records it as prisma migrate deploy does, in its table', async () => {
    const url = await server.createDatabase();
    const first = await migratePostgres(url);
    expect(first.applied).toEqual(listMigrations(POSTGRES_MIGRATIONS_DIR).map((m) => m.name));
    expect(await migratePostgres(url)).toEqual({ applied: [], alreadyApplied: first.applied });
    const rows = await query(url, 'SELECT migration_name, checksum, finished_at, rolled_back_at, logs, applied_steps_count, started_at FROM _prisma_migrations ORDER BY migration_name');
    expect(rows).toEqual(
      listMigrations(POSTGRES_MIGRATIONS_DIR).map((m) => ({
        migration_name: m.name,
        checksum: m.checksum,
        finished_at: expect.any(Date),
        rolled_back_at: null,
        logs: null,
        applied_steps_count: 1,
        started_at: expect.any(Date),
      })),
    );
    // Prisma's DDL for the table on PostgreSQL.
    const columns = await query(
      url,
      `SELECT column_name, data_type, character_maximum_length AS len, is_nullable, column_default FROM information_schema.columns
        WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`,
    );
    expect(columns).toEqual([
      { column_name: 'id', data_type: 'character varying', len: 36, is_nullable: 'NO', column_default: null },
      { column_name: 'checksum', data_type: 'character varying', len: 64, is_nullable: 'NO', column_default: null },
      { column_name: 'finished_at', data_type: 'timestamp with time zone', len: null, is_nullable: 'YES', column_default: null },
      { column_name: 'migration_name', data_type: 'character varying', len: 255, is_nullable: 'NO', column_default: null },
      { column_name: 'logs', data_type: 'text', len: null, is_nullable: 'YES', column_default: null },
      { column_name: 'rolled_back_at', data_type: 'timestamp with time zone', len: null, is_nullable: 'YES', column_default: null },
      { column_name: 'started_at', data_type: 'timestamp with time zone', len: null, is_nullable: 'NO', column_default: 'now()' },
      { column_name: 'applied_steps_count', data_type: 'integer', len: null, is_nullable: 'NO', column_default: '0' },
    ]);
  });

  it('applies each migration once when several setups start at the same moment', async () => {
    const url = await server.createDatabase();
    const results = await Promise.all([1, 2, 3].map(() => migratePostgres(url)));
    const names = listMigrations(POSTGRES_MIGRATIONS_DIR).map((m) => m.name);
    expect(results.flatMap((r) => r.applied).sort()).toEqual(names);
    expect(await query(url, 'SELECT count(*)::int AS n FROM _prisma_migrations')).toEqual([{ n: names.length }]);
  });

  it('refuses a migration changed after it was applied, and rolls a failing one back whole', async () => {
    const url = await server.createDatabase();
    const copy = join(dir, 'set');
    cpSync(POSTGRES_MIGRATIONS_DIR, copy, { recursive: true });
    await migratePostgres(url, copy);
    const first = listMigrations(copy)[0]!.name;
    writeFileSync(join(copy, first, 'migration.sql'), '-- edited\n', { flag: 'a' });
    await expect(migratePostgres(url, copy)).rejects.toThrow(`migration ${first} was changed after it was applied (checksum differs)`);

    const fresh = join(dir, 'broken');
    cpSync(POSTGRES_MIGRATIONS_DIR, fresh, { recursive: true });
    mkdirSync(join(fresh, '99991231000000_broken'));
    writeFileSync(join(fresh, '99991231000000_broken', 'migration.sql'), 'CREATE TABLE "half" ("id" TEXT);\nSELECT no_such_function();\n');
    const url2 = await server.createDatabase();
    await expect(migratePostgres(url2, fresh)).rejects.toThrow(/migration 99991231000000_broken failed: function no_such_function\(\) does not exist/);
    expect(await query(url2, "SELECT to_regclass('half') IS NULL AS gone")).toEqual([{ gone: true }]);
    expect(await query(url2, "SELECT count(*)::int AS n FROM _prisma_migrations WHERE migration_name = '99991231000000_broken'")).toEqual([{ n: 0 }]);
  });
});

describe('timestamps are UTC, whatever the time zone of the server or the process', () => {
  it('reads TIMESTAMP(3) as UTC, sends Dates as UTC, and server-side defaults are UTC', async () => {
    expect(new Date('2026-03-01T12:00:00Z').getHours()).toBe(7); // the process really is in New York
    const url = await server.createDatabase();
    await migratePostgres(url);
    const at = new Date('2026-03-01T12:34:56.789Z');
    const before = Date.now();
    const [row] = await query<{ created_at: Date; published_at: Date; text: string }>(
      url,
      `INSERT INTO outbox (id, subject, payload, headers, published_at) VALUES ('t1', 's', '{}', '{}', $1)
       RETURNING created_at, published_at, published_at::text AS text`,
      [toParam(at)],
    );
    expect(row!.published_at.toISOString()).toBe(at.toISOString());
    // What the column holds is the UTC wall-clock time (as Prisma writes it).
    expect(row!.text).toBe('2026-03-01 12:34:56.789');
    // DEFAULT CURRENT_TIMESTAMP under the session's TimeZone=UTC, not the server's Pacific/Auckland.
    expect(Math.abs(row!.created_at.getTime() - before)).toBeLessThan(60_000);
  });

  it('keeps Prisma\'s ?schema= working: the tables go into that schema', async () => {
    const url = await server.createDatabase();
    await query(url, 'CREATE SCHEMA shop');
    await migratePostgres(`${url}?schema=shop`);
    expect(await query(url, "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'shop' AND table_name = 'orders'")).toEqual([{ n: 1 }]);
    expect(await query(url, "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'orders'")).toEqual([{ n: 0 }]);
  });
});
