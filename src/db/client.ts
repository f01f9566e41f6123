import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaClient } from './generated/client.js';
import { sqliteFile } from './path.js';

export type Db = PrismaClient;
export type { Order, NatsActivity } from './generated/client.js';

/**
 * One Prisma client per process, for reads: the order flows write through SqlWriter (db/sql.ts),
 * which commits with synchronous=FULL. Several processes share the file: WAL mode (set once by
 * the migrator, it persists in the file) lets readers and the one writer overlap.
 */
export function createDb(databaseUrl: string): Db {
  const adapter = new PrismaBetterSqlite3({ url: sqliteFile(databaseUrl), timeout: 10_000 });
  return new PrismaClient({ adapter });
}
