import type { CompiledQuery } from 'kysely';
import pg from 'pg';
import type { Executor } from '../store.js';
import { describePostgres, pgConfig } from './connection.js';
import { isKnockOn, isRetryable, isStalePlan, translate } from './errors.js';
import { type Connection, GroupCommit } from './group-commit.js';
import { PooledReads, PreparedStatements } from './statements.js';

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
const ATTEMPTS = 3;
/** Transactions one process runs at once: enough to overlap one's COMMIT with the next one's statements. */
const CONCURRENT_TRANSACTIONS = 2;
const MAX_BATCH = 100;

export interface PostgresPool {
  /** `host:port/database`, for messages. */
  where: string;
  /** Statements outside any transaction (PooledReads). */
  reads: Executor;
  /** Group commit (group-commit.ts) of units given `context(executor)`. */
  groupCommit<C>(context: (exec: Executor) => C): GroupCommit<C>;
  /** Waits for checked-out connections to be released, then closes them all. */
  end(): Promise<void>;
}

/**
 * How orderflow talks to PostgreSQL, whatever the statements: a `pg` pool whose connections run
 * in pipeline mode (statements are written as soon as they are asked for and answered in order,
 * so a transaction's BEGIN, its units' statements and its savepoints travel without waiting for
 * each other), each statement prepared once per connection (statements.ts), reads of one turn
 * sharing a connection, and writes through group commit. The storage adapter (adapter.ts) and the
 * bench's PostgreSQL ceiling (bench/ceilings/minimal-intake-pg.ts) both stand on it.
 */
export function openPostgresPool(databaseUrl: string, opts: PostgresOptions = {}): PostgresPool {
  const where = describePostgres(databaseUrl);
  const poolSize = opts.poolSize ?? 10;
  const config = pgConfig(databaseUrl, {
    max: poolSize,
    application_name: `orderflow ${opts.name ?? ''}`.trim(),
    ...(opts.password !== undefined ? { password: opts.password } : {}),
    // Idle connections are closed after a while, so a restarted server's are replaced calmly.
    idleTimeoutMillis: 30_000,
    pipeline: true,
  });
  if (opts.readOnly) config.options = `${config.options ?? ''} -c default_transaction_read_only=on`.trim();
  const pool = new pg.Pool(config);
  // An idle pooled connection that the server drops (a restart, an admin's pg_terminate_backend)
  // emits 'error' on the pool; unhandled, that would crash the process. The pool discards it, and
  // the next unit gets a fresh one.
  pool.on('error', () => {});
  const statements = new PreparedStatements(where);
  const pooled = new PooledReads(pool, statements, where);

  async function connect(): Promise<Connection> {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw translate(err, where);
    }
    // A connection that the server drops while we hold it (a restart) emits 'error', which pg's
    // pool listens for only on idle connections: unheard, it would crash the process. One whose
    // transaction could not be ended cleanly, or whose prepared statements went stale, is closed
    // rather than reused.
    let broken: unknown;
    const dropped = (err: Error) => (broken = err);
    client.on('error', dropped);
    const exec = async (q: CompiledQuery) => {
      try {
        return await statements.on(client, q);
      } catch (err) {
        if (isStalePlan(err)) broken ??= err;
        throw err;
      }
    };
    return {
      rows: async (q) => (await exec(q)).rows,
      run: async (q) => (await exec(q)).rowCount ?? 0,
      async command(sql) {
        try {
          return await statements.command(client, sql);
        } catch (err) {
          broken ??= err;
          throw err;
        }
      },
      release(discard) {
        client.off('error', dropped);
        const why = broken ?? discard;
        client.release(why === undefined ? undefined : why instanceof Error ? why : new Error(String(why)));
      },
    };
  }

  return {
    where,
    reads: {
      rows: async (q) => (await pooled.query(q)).rows,
      run: async (q) => (await pooled.query(q)).rowCount ?? 0,
    },
    groupCommit: (context) =>
      new GroupCommit(connect, context, {
        // Leaves a connection for reads.
        concurrency: Math.max(1, Math.min(CONCURRENT_TRANSACTIONS, poolSize - 1)),
        maxBatch: MAX_BATCH,
        attempts: ATTEMPTS,
        isRetryable,
        isKnockOn,
        needsFreshConnection: isStalePlan,
      }),
    end: () => pool.end(),
  };
}
