import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaClient } from './generated/client.js';
import { sqliteFile, sqlitePath } from './path.js';

export type Db = PrismaClient;
export type { Order, NatsActivity } from './generated/client.js';

/**
 * One Prisma client per process, for reads: the order flows write through SqlWriter (db/sql.ts),
 * which commits with synchronous=FULL. Several processes share the file: WAL mode (set once by
 * the migrator, it persists in the file) lets readers and the one writer overlap.
 */
export function createDb(databaseUrl: string, opts: { readOnly?: boolean } = {}): Db {
  // Read-only (operators' commands that only look): never creates the file or its folder.
  const adapter = opts.readOnly
    ? new PrismaBetterSqlite3({ url: sqlitePath(databaseUrl), timeout: 10_000, readonly: true, fileMustExist: true })
    : new PrismaBetterSqlite3({ url: sqliteFile(databaseUrl), timeout: 10_000 });
  return new PrismaClient({ adapter });
}
