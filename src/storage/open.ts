import type { Config } from '../config/env.js';
import type { Storage } from '../orders/ports.js';
import { openPostgresStorage, type PostgresOptions } from './postgres/adapter.js';
import { databasePassword, isPostgresUrl } from './postgres/connection.js';
import { migratePostgres } from './postgres/migrate.js';
import { openSqliteStorage, type SqliteOptions } from './sqlite/adapter.js';
import { migrate as migrateSqlite, type MigrationResult } from './sqlite/migrate.js';

export type { MigrationResult };

/** Each adapter takes the options that concern it and ignores the others'. */
export type StorageOptions = SqliteOptions & PostgresOptions;

/** A process's storage options from its settings (`name`: which process, for the database's view of connections). */
export function storageOptions(config: Pick<Config, 'DATABASE_URL' | 'DATABASE_PASSWORD_FILE' | 'DATABASE_POOL_SIZE'>, name: string): StorageOptions {
  if (!isPostgresUrl(config.DATABASE_URL)) return {};
  const password = databasePassword(config);
  return { poolSize: config.DATABASE_POOL_SIZE, name, ...(password !== undefined ? { password } : {}) };
}

/** Which adapter a DATABASE_URL means. */
export function storageKind(databaseUrl: string): 'sqlite' | 'postgresql' {
  if (databaseUrl.startsWith('file:')) return 'sqlite';
  if (isPostgresUrl(databaseUrl)) return 'postgresql';
  throw new Error(`DATABASE_URL must be a file: URL (SQLite) or a postgres:// URL (PostgreSQL), not ${databaseUrl.split(':')[0]}:`);
}

/**
 * The storage a process uses, chosen by DATABASE_URL's scheme. Only composition roots (runtime,
 * cli, the test and bench harnesses) call this; everything else takes a `Storage`.
 */
export async function openStorage(databaseUrl: string, opts: StorageOptions = {}): Promise<Storage> {
  if (storageKind(databaseUrl) === 'sqlite') return openSqliteStorage(databaseUrl, opts);
  return openPostgresStorage(databaseUrl, opts);
}

/** Applies the migrations of DATABASE_URL's database (`orderflow setup`). */
export async function migrateStorage(databaseUrl: string, opts: Pick<PostgresOptions, 'password'> = {}): Promise<MigrationResult> {
  if (storageKind(databaseUrl) === 'sqlite') return migrateSqlite(databaseUrl);
  return migratePostgres(databaseUrl, undefined, opts.password !== undefined ? { password: opts.password } : {});
}
