import type { CompiledQuery } from 'kysely';
import pg from 'pg';
import { StorageUnavailableError } from '../../orders/errors.js';
import type { Storage, Tx } from '../../orders/ports.js';
import { Queries } from '../queries.js';
import { storageReads, transactionPorts, type Executor } from '../store.js';
import { describePostgres, pgConfig, toParam } from './connection.js';
import { isRetryable, translate } from './errors.js';

export interface PostgresOptions {
  /** Connections this process keeps at most (DATABASE_POOL_SIZE). */
  poolSize?: number;
  /** When DATABASE_URL has none (DATABASE_PASSWORD_FILE). */
  password?: string;
  /** Shown in pg_stat_activity: which orderflow process holds a connection. */
  name?: string;
  /** Operators' commands that only look: every transaction read-only. */
  readOnly?: boolean;
}

// A unit that deadlocks or fails serialization committed nothing and is only database work (the
// port's rule), so it runs again, a few times.
const RETRIES = 3;
const PING_TIMEOUT_MS = 2000;

/**
 * Storage on PostgreSQL through a `pg` pool: each unit of work is one transaction (BEGIN …
 * COMMIT) on a pooled connection, running the same Kysely-built statements as SQLite compiled for
 * PostgreSQL. Claims are conditional updates, the outbox lease `FOR UPDATE SKIP LOCKED` (see
 * queries.ts), so any number of processes on any number of machines can share the database.
 * Reads run on the pool outside any transaction. Driver errors become the domain's
 * (errors.ts): a unique violation DuplicateKeyError, a server that is away StorageUnavailableError.
 */
export function openPostgresStorage(databaseUrl: string, opts: PostgresOptions = {}): Storage {
  const where = describePostgres(databaseUrl);
  const queries = new Queries('postgresql');
  const config = pgConfig(databaseUrl, {
    max: opts.poolSize ?? 10,
    application_name: `orderflow ${opts.name ?? ''}`.trim(),
    ...(opts.password !== undefined ? { password: opts.password } : {}),
    // Idle connections are closed after a while, so a restarted server's are replaced calmly.
    idleTimeoutMillis: 30_000,
  });
  if (opts.readOnly) config.options = `${config.options ?? ''} -c default_transaction_read_only=on`.trim();
  const pool = new pg.Pool(config);
  // An idle pooled connection that the server drops (a restart, an admin's pg_terminate_backend)
  // emits 'error' on the pool; unhandled, that would crash the process. The pool discards it, and
  // the next unit gets a fresh one.
  pool.on('error', () => {});

  const executor = (client: pg.Pool | pg.PoolClient): Executor => ({
    async rows<R>(q: CompiledQuery<R>) {
      try {
        return (await client.query({ text: q.sql, values: q.parameters.map(toParam) })).rows as R[];
      } catch (err) {
        throw translate(err, where);
      }
    },
    async run(q: CompiledQuery) {
      try {
        return (await client.query({ text: q.sql, values: q.parameters.map(toParam) })).rowCount ?? 0;
      } catch (err) {
        throw translate(err, where);
      }
    },
  });

  const reads = storageReads(executor(pool), queries);
  let closed: Promise<void> | undefined;

  async function once<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw translate(err, where);
    }
    // A connection whose transaction could not be ended cleanly is destroyed, not reused.
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(transactionPorts(executor(client), queries));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw translate(err, where);
    } finally {
      client.release(broken);
    }
  }

  return {
    kind: 'postgresql',
    ...reads,
    // For /ready, which a probe asks with a short timeout of its own: a server that does not
    // answer (a dropped route, a full pool) is reported as such within PING_TIMEOUT_MS.
    async ping() {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StorageUnavailableError(`PostgreSQL at ${where} did not answer within ${PING_TIMEOUT_MS / 1000} s`)), PING_TIMEOUT_MS);
      });
      try {
        await Promise.race([reads.ping(), late]);
      } finally {
        clearTimeout(timer);
      }
    },
    async run(work) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await once(work);
        } catch (err) {
          if (attempt >= RETRIES || !isRetryable(err)) throw err;
        }
      }
    },
    close() {
      // Waits for checked-out connections (units in flight) to be released, then ends them all.
      return (closed ??= pool.end());
    },
  };
}
