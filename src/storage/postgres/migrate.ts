import { randomUUID } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { listMigrations, type MigrationResult } from '../sqlite/migrate.js';
import { pgConfig } from './connection.js';

/**
 * Applies prisma/postgresql/migrations/<stamp>_<name>/migration.sql in order and records each in
 * `_prisma_migrations` with the table, columns and checksum (sha256 of the file) that
 * `prisma migrate deploy` uses on PostgreSQL, so the Prisma CLI, where it runs, agrees with us.
 */
export const POSTGRES_MIGRATIONS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../prisma/postgresql/migrations');

// Prisma's own DDL for its bookkeeping table on PostgreSQL.
const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

/**
 * The advisory lock `prisma migrate` itself takes on PostgreSQL: two `orderflow setup`s starting
 * at once, or one and a `prisma migrate deploy`, apply each migration once, one after the other.
 */
const MIGRATE_LOCK = 72707369;

interface Recorded {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

/** `connection`: more of pg's settings (a password from DATABASE_PASSWORD_FILE, see postgresSettings). */
export async function migratePostgres(databaseUrl: string, dir = POSTGRES_MIGRATIONS_DIR, connection: pg.ClientConfig = {}): Promise<MigrationResult> {
  const migrations = listMigrations(dir);
  const client = new pg.Client(pgConfig(databaseUrl, { application_name: 'orderflow setup', ...connection }));
  await client.connect();
  try {
    // Session-level: held across every migration's transaction, released when we are done or
    // when the connection drops (a setup that crashes releases it with its session).
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATE_LOCK]);
    await client.query(CREATE_TABLE);
    // Read under the lock: whatever another setup applied while we waited counts as applied.
    const { rows } = await client.query<Recorded>('SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations"');
    const applied = new Map(rows.filter((r) => r.finished_at !== null && r.rolled_back_at === null).map((r) => [r.migration_name, r.checksum]));
    const failed = rows.find((r) => r.finished_at === null && r.rolled_back_at === null);
    if (failed) {
      throw new Error(
        `migration ${failed.migration_name} failed earlier and was not resolved (see "_prisma_migrations".logs); fix the database, then mark it with \`prisma migrate resolve\``,
      );
    }
    const result: MigrationResult = { applied: [], alreadyApplied: [] };
    for (const m of migrations) {
      const recorded = applied.get(m.name);
      if (recorded !== undefined) {
        if (recorded !== m.checksum) throw new Error(`migration ${m.name} was changed after it was applied (checksum differs)`);
        result.alreadyApplied.push(m.name);
        continue;
      }
      // The migration and its record commit together (PostgreSQL's DDL is transactional): a
      // failure or a crash leaves it either applied and recorded, or neither.
      await client.query('BEGIN');
      try {
        const id = randomUUID();
        await client.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, clock_timestamp(), 0)`,
          [id, m.checksum, m.name],
        );
        await client.query(m.sql);
        await client.query(`UPDATE "_prisma_migrations" SET finished_at = clock_timestamp(), applied_steps_count = 1 WHERE id = $1`, [id]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw new Error(`migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      result.applied.push(m.name);
    }
    return result;
  } finally {
    // Ending the session releases the advisory lock.
    await client.end().catch(() => {});
  }
}
