import Database from 'better-sqlite3';
import { sqliteFile } from './path.js';

/** A better-sqlite3 connection inside a write transaction: prepared statements, run synchronously. */
export interface Sql {
  /** The prepared statement for `sql`, compiled once per connection. */
  stmt(sql: string): Database.Statement;
}

/** SQLite text timestamps in the form Prisma's adapter writes (and reads back): ISO 8601 with +00:00. */
export const sqlTime = (d: Date) => d.toISOString().replace('Z', '+00:00');

/** Reads a timestamp column written by us, by Prisma, or by SQLite's CURRENT_TIMESTAMP (UTC, no zone). */
export function fromSqlTime(value: string | null): Date | null {
  if (value === null) return null;
  return new Date(/[zZ]|[+-]\d\d:\d\d$/.test(value) ? value : `${value.replace(' ', 'T')}Z`);
}

export const isSqliteUnique = (err: unknown) => /^SQLITE_CONSTRAINT_(UNIQUE|PRIMARYKEY)$/.test((err as { code?: string }).code ?? '');
const isBusy = (err: unknown) => /^SQLITE_BUSY/.test((err as { code?: string }).code ?? '');

interface Pending {
  work: (sql: Sql) => unknown;
  resolve: (v: never) => void;
  reject: (e: unknown) => void;
}

/**
 * The write path of the hot flows (orders, outbox, inbox, activity): prepared statements on
 * better-sqlite3, the driver Prisma's SQLite adapter itself runs on, with group commit.
 *
 * Why not Prisma here: the profile showed each Prisma statement costing ~0.3 ms of CPU (its query
 * compiler, a fresh `prepare`, async hops) against ~15 µs for a prepared statement, and its batch
 * transactions holding SQLite's write lock across event-loop turns, so the five processes queued
 * behind each other's locks in SQLite's sleeping busy handler, with the event loop blocked.
 *
 * How: `write(work)` queues a unit of work; everything queued in one event-loop turn runs in one
 * `BEGIN IMMEDIATE … COMMIT`, each unit in its own savepoint (one unit failing rolls back only
 * itself). The whole transaction is synchronous, so the lock is held for microseconds plus one
 * fsync (synchronous=FULL: durable before anyone is told). When another process holds the lock the
 * connection does not sleep inside SQLite (busy_timeout 0); it retries a moment later from a
 * timer, so the process keeps serving while it waits.
 */
export class SqlWriter implements Sql {
  private readonly conn: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private queue: Pending[] = [];
  private scheduled = false;
  private lazyTimer: NodeJS.Timeout | undefined;
  private busySince = 0;
  private lastCommitAt = 0;
  private closed = false;

  constructor(
    databaseUrl: string,
    /** Give up on a lock held this long by someone else (the same 10 s the Prisma client waits). */
    private readonly lockTimeoutMs = 10_000,
  ) {
    this.conn = new Database(sqliteFile(databaseUrl), { timeout: 0 });
    this.conn.pragma('journal_mode = WAL');
    this.conn.pragma('synchronous = FULL');
  }

  stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.conn.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /**
   * Runs `work` inside the next group transaction; resolves once that transaction is committed.
   * `within`: work nobody waits on (activity rows, published marks) may wait that many ms for
   * company, so it shares a commit with more work and holds the lock less often.
   */
  write<T>(work: (sql: Sql) => T, opts: { within?: number } = {}): Promise<T> {
    if (this.closed) return Promise.reject(new Error('database writer is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve: resolve as (v: never) => void, reject });
      if (!opts.within) this.kick();
      else if (!this.scheduled) this.lazyTimer ??= setTimeout(() => this.kick(), opts.within);
    });
  }

  private kick(): void {
    clearTimeout(this.lazyTimer);
    this.lazyTimer = undefined;
    if (this.scheduled) return;
    this.scheduled = true;
    // Under load (a commit just happened) wait a millisecond for company: the fsync blocks the
    // event loop, so fewer, larger commits leave it more time to serve. When idle, commit now.
    if (performance.now() - this.lastCommitAt < 2) setTimeout(() => this.flush(), 1);
    else setImmediate(() => this.flush());
  }

  /** A read outside any transaction (WAL: never waits for a writer). */
  read<T>(work: (sql: Sql) => T): T {
    return work(this);
  }

  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    try {
      this.stmt('BEGIN IMMEDIATE').run();
    } catch (err) {
      this.busySince ||= Date.now();
      const gaveUp = Date.now() - this.busySince > this.lockTimeoutMs;
      if (!isBusy(err) || gaveUp) {
        this.busySince = 0;
        this.settleAll(batch, gaveUp ? new Error(`database is locked (waited ${this.lockTimeoutMs} ms)`) : err);
        return this.scheduleNext();
      }
      // Someone else holds the write lock: try again shortly, with what queued meanwhile.
      this.queue = batch.concat(this.queue);
      setTimeout(() => this.flush(), 1 + Math.random());
      return;
    }
    this.busySince = 0;
    const results: { ok: boolean; value: unknown }[] = [];
    try {
      for (const p of batch) {
        this.stmt('SAVEPOINT unit').run();
        try {
          const value = p.work(this);
          // An async unit would run its awaited part after COMMIT, outside the transaction.
          if (value instanceof Promise) throw new Error('SqlWriter.write: the unit of work must be synchronous');
          results.push({ ok: true, value });
          this.stmt('RELEASE unit').run();
        } catch (err) {
          this.stmt('ROLLBACK TO unit').run();
          this.stmt('RELEASE unit').run();
          results.push({ ok: false, value: err });
        }
      }
      this.stmt('COMMIT').run();
      this.lastCommitAt = performance.now();
    } catch (err) {
      if (this.conn.inTransaction) this.stmt('ROLLBACK').run();
      return this.settleAll(batch, err);
    } finally {
      this.scheduleNext();
    }
    batch.forEach((p, i) => (results[i]!.ok ? p.resolve(results[i]!.value as never) : p.reject(results[i]!.value)));
  }

  private settleAll(batch: Pending[], err: unknown): void {
    for (const p of batch) p.reject(err);
  }

  private scheduleNext(): void {
    this.scheduled = false;
    if (this.queue.length > 0) this.kick();
  }

  /** Waits for queued writes to commit, then closes the connection. */
  async close(): Promise<void> {
    if (this.queue.length) this.kick();
    while (this.scheduled || this.queue.length) await new Promise((r) => setTimeout(r, 1));
    this.closed = true;
    this.conn.close();
  }
}
