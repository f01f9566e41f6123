import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaClient } from './generated/client.js';

export type Db = PrismaClient;
export type { Order, NatsActivity } from './generated/client.js';

/** `file:./data/orderflow.db` → `./data/orderflow.db` (relative to the working directory). */
export function sqlitePath(databaseUrl: string): string {
  return databaseUrl.replace(/^file:/, '').replace(/\?.*$/, '');
}

/** The database file of a `file:` URL, with its folder created. */
export function sqliteFile(databaseUrl: string): string {
  const path = sqlitePath(databaseUrl);
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  return path;
}

/**
 * One Prisma client per process, for reads: the order flows write through SqlWriter (db/sql.ts),
 * which commits with synchronous=FULL. Several processes share the file: WAL mode (set once by
 * the migrator, it persists in the file) lets readers and the one writer overlap.
 */
export function createDb(databaseUrl: string): Db {
  const adapter = new PrismaBetterSqlite3({ url: sqliteFile(databaseUrl), timeout: 10_000 });
  return new PrismaClient({ adapter });
}
