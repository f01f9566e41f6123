import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from 'kysely';
import type { DB } from './generated/types.js';

export type { DB };
export type { NatsActivity as ActivityRow, Order as OrderRow, OutboxMessage as OutboxMessageRow } from './generated/types.js';

/** The SQL dialects the storage layer speaks. */
export type Dialect = 'sqlite' | 'postgresql';

/**
 * A Kysely that only compiles (DummyDriver: it never connects): queries.ts builds each statement
 * with it and an adapter runs the compiled SQL and parameters on its own driver, inside its own
 * transactions. Kysely's types come from the Prisma schema (prisma-kysely, `npm run generate`).
 */
export function compiler(dialect: Dialect): Kysely<DB> {
  const sqlite = dialect === 'sqlite';
  return new Kysely<DB>({
    dialect: {
      createAdapter: () => (sqlite ? new SqliteAdapter() : new PostgresAdapter()),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => (sqlite ? new SqliteIntrospector(db) : new PostgresIntrospector(db)),
      createQueryCompiler: () => (sqlite ? new SqliteQueryCompiler() : new PostgresQueryCompiler()),
    },
  });
}

/**
 * Timestamps go in as ISO 8601 text with +00:00: on SQLite the form Prisma's adapter wrote (so
 * databases written before stay readable and compare as text in time order), and PostgreSQL
 * parses it into a timestamptz.
 */
export const dbTime = (d: Date): string => d.toISOString().replace('Z', '+00:00');

/**
 * Reads a timestamp column: a Date (node-postgres), text written by us or Prisma, or SQLite's
 * CURRENT_TIMESTAMP (UTC, no zone).
 */
export function fromDbTime(value: string | Date): Date;
export function fromDbTime(value: string | Date | null): Date | null;
export function fromDbTime(value: string | Date | null): Date | null {
  if (value === null || value instanceof Date) return value;
  return new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value.replace(' ', 'T')}Z`);
}
