import type { Storage } from '../orders/ports.js';
import { openSqliteStorage, type SqliteOptions } from './sqlite/adapter.js';
import { migrate as migrateSqlite, type MigrationResult } from './sqlite/migrate.js';

export type { MigrationResult };

export type StorageOptions = SqliteOptions;

/** Which adapter a DATABASE_URL means. */
export function storageKind(databaseUrl: string): 'sqlite' | 'postgresql' {
  if (databaseUrl.startsWith('file:')) return 'sqlite';
  if (/^postgres(ql)?:\/\//.test(databaseUrl)) return 'postgresql';
  throw new Error(`DATABASE_URL must be a file: URL (SQLite) or a postgres:// URL (PostgreSQL), not ${databaseUrl.split(':')[0]}:`);
}

/**
 * The storage a process uses, chosen by DATABASE_URL's scheme. Only composition roots (runtime,
 * cli, the test and bench harnesses) call this; everything else takes a `Storage`.
 */
export async function openStorage(databaseUrl: string, opts: StorageOptions = {}): Promise<Storage> {
  if (storageKind(databaseUrl) === 'sqlite') return openSqliteStorage(databaseUrl, opts);
  throw new Error('PostgreSQL storage is not built into this version yet; use a file: DATABASE_URL');
}

/** Applies the migrations of DATABASE_URL's database (`orderflow setup`). */
export async function migrateStorage(databaseUrl: string): Promise<MigrationResult> {
  if (storageKind(databaseUrl) === 'sqlite') return migrateSqlite(databaseUrl);
  throw new Error('PostgreSQL migrations are not built into this version yet; use a file: DATABASE_URL');
}
