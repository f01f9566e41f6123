import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { Config } from '../../config/env.js';

/** `postgres://` or `postgresql://`: the URLs that select PostgreSQL over SQLite. */
export function isPostgresUrl(databaseUrl: string): boolean {
  return /^postgres(ql)?:\/\//i.test(databaseUrl);
}

// OIDs of PostgreSQL's timestamp types (pg_type).
const TIMESTAMP = 1114;
const TIMESTAMPTZ = 1184;

/**
 * Timestamps: the columns are TIMESTAMP(3) without a time zone, as Prisma maps DateTime on
 * PostgreSQL (so Prisma's migrations, its client and ours agree), and they always hold UTC.
 * pg reads such a value in the *process's* time zone by default and sends a Date in local time
 * too, so a process with TZ=Europe/Paris would shift every time by an hour. We keep both ends in
 * UTC: values without a zone are read as UTC here, Dates are sent as UTC ISO strings by the
 * adapter (`toParam`), and each session runs with TimeZone=UTC so that server-side defaults
 * (`DEFAULT CURRENT_TIMESTAMP`, `now()`) are UTC as well. timestamptz everywhere would be the
 * other consistent choice, but it departs from Prisma's mapping and from the SQLite schema's.
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === TIMESTAMP && format !== 'binary') return (v: string) => new Date(`${v.replace(' ', 'T')}Z`);
    if (oid === TIMESTAMPTZ && format !== 'binary') return (v: string) => new Date(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as pg.CustomTypesConfig;

/** A query parameter as pg should send it: a Date as UTC (see `types`). */
export function toParam(v: unknown): unknown {
  return v instanceof Date ? v.toISOString() : v;
}

/**
 * pg's client settings for a DATABASE_URL. Prisma's `?schema=name` (pg ignores it) becomes the
 * session's search_path, so the same URL works for Prisma's CLI and for us.
 */
export function pgConfig(databaseUrl: string, extra: pg.PoolConfig = {}): pg.PoolConfig {
  const url = new URL(databaseUrl);
  const schema = url.searchParams.get('schema');
  url.searchParams.delete('schema');
  const options = ['-c TimeZone=UTC', ...(schema ? [`-c search_path=${schema.replace(/[^A-Za-z0-9_$]/g, '')}`] : [])];
  return {
    connectionString: url.toString(),
    options: options.join(' '),
    types,
    application_name: 'orderflow',
    // A server that does not answer must not hang a request or a start: the caller decides.
    connectionTimeoutMillis: 5000,
    keepAlive: true,
    ...extra,
  };
}

/** Where a URL points, for messages: `host:port/database` (never the password). */
export function describePostgres(databaseUrl: string): string {
  try {
    const u = new URL(databaseUrl);
    return `${u.hostname || 'localhost'}:${u.port || 5432}${u.pathname}`;
  } catch {
    return 'the DATABASE_URL';
  }
}

/**
 * The password of DATABASE_PASSWORD_FILE when DATABASE_URL has none (compose hands it out as a
 * file, so it is in no environment and no `ps` listing); undefined otherwise, and pg falls back to
 * PGPASSWORD or ~/.pgpass as libpq does.
 */
export function databasePassword(config: Pick<Config, 'DATABASE_URL' | 'DATABASE_PASSWORD_FILE'>): string | undefined {
  if (!config.DATABASE_PASSWORD_FILE || new URL(config.DATABASE_URL).password) return undefined;
  try {
    return readFileSync(config.DATABASE_PASSWORD_FILE, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new Error(`cannot read DATABASE_PASSWORD_FILE ${config.DATABASE_PASSWORD_FILE}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
