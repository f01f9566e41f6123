import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import type { OrderStatus } from '../../src/events/contracts.js';
import { newOrder, type TransitionData } from '../../src/orders/order.js';
import type { Storage } from '../../src/orders/ports.js';
import type { DB } from '../../src/storage/schema.js';
import { sqlitePath } from '../../src/storage/sqlite/path.js';

export { dbTime } from '../../src/storage/schema.js';

/**
 * A test's own way into the database, around orderflow's storage: to plant a duplicate, delete a
 * row, rewind a status, count what the code under test must not be trusted to count. Kysely on
 * the real driver of DATABASE_URL's kind, with the same generated table types as src/storage.
 * Timestamps are written as text (dbTime).
 */
export function testDb(databaseUrl: string): Kysely<DB> {
  if (databaseUrl.startsWith('file:'))
    return new Kysely<DB>({ dialect: new SqliteDialect({ database: new Database(sqlitePath(databaseUrl), { timeout: 10_000 }) }) });
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  // An idle connection the server drops (a fault scenario restarting PostgreSQL) is an 'error'
  // event on the pool, which would end the test process unheard; the next query reconnects.
  pool.on('error', () => {});
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
}

/** COUNT(*) as a number, whatever the driver returns it as. */
export const n = (row: { n: unknown } | undefined) => Number(row?.n ?? 0);

/** The old repository's three verbs, for tests that set orders up through orderflow's own storage. */
export function testOrders(storage: Storage) {
  return {
    create: (input: { customerEmail: string; amountCents: number; correlationId: string }) => storage.run((tx) => tx.orders.insert(newOrder(input))),
    transition: (id: string, to: OrderStatus, data: TransitionData = {}) => storage.run((tx) => tx.orders.transition(id, to, data, new Date())),
    find: (id: string) => storage.order(id),
  };
}
