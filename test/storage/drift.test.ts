import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listMigrations, migrate, MIGRATIONS_DIR } from '../../src/storage/sqlite/migrate.js';
import { migratePostgres, POSTGRES_MIGRATIONS_DIR } from '../../src/storage/postgres/migrate.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { compareModels, compareShapes, postgresShape, sqliteShape, type Shape } from './schema-shape.js';

/**
 * SQLite and PostgreSQL must hold the same schema: the same migrations (by name), and once both
 * sets are applied to real databases, the same tables, columns (type family, nullability,
 * default), primary keys, indexes and foreign keys, as each database reports them. The two
 * schema.prisma files must have the same models. Each check is shown failing on a deliberately
 * altered copy, so a green run means something.
 */
const ROOT = resolve(import.meta.dirname, '../..');
let server: PostgresServer;
const dir = mkdtempSync(join(tmpdir(), 'orderflow-drift-'));
let sqlite: Shape;
let postgres: Shape;

beforeAll(async () => {
  server = await startPostgres();
  migrate(`file:${join(dir, 'drift.db')}`);
  sqlite = sqliteShape(join(dir, 'drift.db'));
  const url = await server.createDatabase('drift');
  await migratePostgres(url);
  postgres = await postgresShape(url);
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('SQLite and PostgreSQL schemas', () => {
  it('have one migration per name in each set, and the lock files name their providers', () => {
    expect(listMigrations(POSTGRES_MIGRATIONS_DIR).map((m) => m.name)).toEqual(listMigrations(MIGRATIONS_DIR).map((m) => m.name));
    expect(readFileSync(join(POSTGRES_MIGRATIONS_DIR, 'migration_lock.toml'), 'utf8')).toMatch(/^provider = "postgresql"$/m);
    expect(readFileSync(join(MIGRATIONS_DIR, 'migration_lock.toml'), 'utf8')).toMatch(/^provider = "sqlite"$/m);
  });

  it('are the same once migrated: tables, columns, keys, indexes', () => {
    expect(sqlite.map((t) => t.name)).toEqual(expect.arrayContaining(['orders', 'outbox', 'nats_activities', 'processed_messages']));
    expect(compareShapes(sqlite, postgres)).toEqual([]);
  });

  it('have the same model blocks in both schema.prisma files', () => {
    const a = readFileSync(join(ROOT, 'prisma/schema.prisma'), 'utf8');
    const b = readFileSync(join(ROOT, 'prisma/postgresql/schema.prisma'), 'utf8');
    expect(compareModels(a, b)).toEqual([]);
    expect(readFileSync(join(ROOT, 'prisma/postgresql/schema.prisma'), 'utf8')).toMatch(/provider = "postgresql"/);
  });
});

describe('the drift check fails on drift', () => {
  it('reports a PostgreSQL set with an index dropped, a column made nullable and one added', async () => {
    const altered = join(dir, 'altered');
    cpSync(POSTGRES_MIGRATIONS_DIR, altered, { recursive: true });
    const extra = join(altered, '99991231000000_drift');
    mkdirSync(extra);
    writeFileSync(
      join(extra, 'migration.sql'),
      `DROP INDEX "orders_created_at_idx";
       ALTER TABLE "outbox" ALTER COLUMN "subject" DROP NOT NULL;
       ALTER TABLE "orders" ADD COLUMN "note" TEXT;
       DROP INDEX "nats_activities_consumer_event_id_key";
       CREATE INDEX "nats_activities_consumer_event_id_key" ON "nats_activities"("event_id", "consumer");`,
    );
    const url = await server.createDatabase('drift_altered');
    await migratePostgres(url, altered);
    const diffs = compareShapes(sqlite, await postgresShape(url));
    expect(diffs).toEqual(
      expect.arrayContaining([
        'index orders_created_at_idx on orders: only in sqlite',
        'column outbox.subject: nullable false in sqlite, true in postgresql',
        'column orders.note: only in postgresql',
        'index nats_activities_consumer_event_id_key on nats_activities: unique (consumer,event_id) in sqlite, (event_id,consumer) in postgresql',
      ]),
    );
    expect(diffs).toHaveLength(4);
  });

  it('reports type, default, key and table differences', () => {
    const changed: Shape = structuredClone(postgres);
    const orders = changed.find((t) => t.name === 'orders')!;
    orders.columns.find((c) => c.name === 'amount_cents')!.type = 'float';
    orders.columns.find((c) => c.name === 'currency')!.default = "'EUR'";
    changed.find((t) => t.name === 'processed_messages')!.primaryKey = ['message_id'];
    changed.push({ name: 'extra', columns: [], primaryKey: [], indexes: [], foreignKeys: [] });
    expect(compareShapes(sqlite, changed)).toEqual(
      expect.arrayContaining([
        'column orders.amount_cents: type "integer" in sqlite, "float" in postgresql',
        `column orders.currency: default "'USD'" in sqlite, "'EUR'" in postgresql`,
        'table processed_messages: primary key (consumer,message_id) in sqlite, (message_id) in postgresql',
        'table extra: only in postgresql',
      ]),
    );
  });

  it('reports a model that differs between the two schema files', () => {
    const a = readFileSync(join(ROOT, 'prisma/schema.prisma'), 'utf8');
    const b = a.replace('currency        String    @default("USD")', 'currency        String    @default("EUR")').replace(/model ProcessedMessage \{[\s\S]*?\n\}/, '');
    expect(compareModels(a, b)).toEqual([
      'model Order: differs at "currency String @default("USD")" in prisma/schema.prisma vs "currency String @default("EUR")" in prisma/postgresql/schema.prisma',
      'model ProcessedMessage: only in prisma/schema.prisma',
    ]);
  });
});
