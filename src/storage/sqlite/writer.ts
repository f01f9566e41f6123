import Database from 'better-sqlite3';
import type { CompiledQuery } from 'kysely';
import { StorageUnavailableError } from '../../orders/errors.js';
import type { Executor } from '../store.js';
import { isBusy, translate } from './errors.js';

/** Prepared statements of one connection, keyed by their SQL text (what Kysely compiled). */
export class Statements implements Executor {
  private readonly cache = new Map<string, Database.Statement>();

  constructor(readonly conn: Database.Database) {}

  stmt(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) {
      // `IN (?, ?, …)` lists make a shape per length: bounded, since a full cache starts over.
      if (this.cache.size >= 1000) this.cache.clear();
      s = this.conn.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  allSync<R>(q: CompiledQuery<R>): R[] {
    try {
      return this.stmt(q.sql).all(...q.parameters) as R[];
    } catch (err) {
      throw translate(err);
    }
  }

  runSync(q: CompiledQuery): number {
    try {
      return this.stmt(q.sql).run(...q.parameters).changes;
    } catch (err) {
      throw translate(err);
    }
  }

  async rows<R>(q: CompiledQuery<R>): Promise<R[]> {
    return this.allSync(q);
  }

  async run(q: CompiledQuery): Promise<number> {
    return this.runSync(q);
  }
}

interface Pending<C> {
  work: (tx: C) => Promise<unknown>;
  resolve: (v: never) => void;
  reject: (e: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; value: unknown };

export const OUTSIDE_WORK =
  'a unit of work awaited something outside its transaction (NATS, a timer, another unit); it was rolled back. Do that before or after storage.run(), not inside it';

/**
 * The write path of the flows on SQLite: better-sqlite3 with group commit.
 *
 * Why not an ORM here: the profile showed each Prisma statement costing ~0.3 ms of CPU (its query
 * compiler, a fresh `prepare`, async hops) against ~15 µs for a prepared statement, and its batch
 * transactions holding SQLite's write lock across event-loop turns, so the five processes queued
 * behind each other's locks in SQLite's sleeping busy handler, with the event loop blocked.
 *
 * How: `run(work)` queues a unit of work; everything queued in one event-loop turn runs in one
 * `BEGIN IMMEDIATE … COMMIT`, each unit in its own savepoint (one unit failing rolls back only
 * itself), awaited one after the other. better-sqlite3 is synchronous, so a unit's statements
 * resolve at once and the whole transaction completes within the microtask queue: the lock is
 * held for microseconds plus one fsync (synchronous=FULL: durable before anyone is told). A unit
 * still pending when a `setImmediate` fires has awaited something else (real I/O): it is rolled
 * back and rejected (OUTSIDE_WORK) rather than hold the lock across event-loop turns, and its
 * `tx` refuses further statements. When another process holds the lock the connection does not
 * sleep inside SQLite (busy_timeout 0); it retries a moment later from a timer, so the process
 * keeps serving while it waits.
 */
export class GroupCommitWriter<C> {
  private readonly statements: Statements;
  private queue: Pending<C>[] = [];
  private scheduled = false;
  private lazyTimer: NodeJS.Timeout | undefined;
  private busySince = 0;
  private lastCommitAt = 0;
  private closed = false;

  constructor(
    readonly conn: Database.Database,
    /** What a unit of work is given, on the executor of its savepoint (orderflow's Tx). */
    private readonly context: (exec: Executor) => C,
    /** Give up on a lock held this long by someone else. */
    private readonly lockTimeoutMs = 10_000,
  ) {
    this.statements = new Statements(conn);
  }

  run<T>(work: (tx: C) => Promise<T>, opts: { within?: number } = {}): Promise<T> {
    if (this.closed) return Promise.reject(new StorageUnavailableError('the database is closed'));
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
    if (performance.now() - this.lastCommitAt < 2) setTimeout(() => void this.flush(), 1);
    else setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    const s = this.statements;
    try {
      s.stmt('BEGIN IMMEDIATE').run();
    } catch (err) {
      this.busySince ||= Date.now();
      const gaveUp = Date.now() - this.busySince > this.lockTimeoutMs;
      if (!isBusy(err) || gaveUp) {
        this.busySince = 0;
        this.settleAll(batch, gaveUp ? new StorageUnavailableError(`database is locked (waited ${this.lockTimeoutMs} ms)`) : translate(err));
        return this.scheduleNext();
      }
      // Someone else holds the write lock: try again shortly, with what queued meanwhile.
      this.queue = batch.concat(this.queue);
      setTimeout(() => void this.flush(), 1 + Math.random());
      return;
    }
    this.busySince = 0;
    const results: Outcome[] = [];
    try {
      for (const p of batch) {
        s.stmt('SAVEPOINT unit').run();
        const outcome = await this.runUnit(p);
        if (!outcome.ok) s.stmt('ROLLBACK TO unit').run();
        s.stmt('RELEASE unit').run();
        results.push(outcome);
      }
      s.stmt('COMMIT').run();
      this.lastCommitAt = performance.now();
    } catch (err) {
      if (this.conn.inTransaction) s.stmt('ROLLBACK').run();
      this.settleAll(batch, translate(err));
      return this.scheduleNext();
    }
    this.scheduleNext();
    batch.forEach((p, i) => (results[i]!.ok ? p.resolve(results[i]!.value as never) : p.reject(results[i]!.value)));
  }

  /** One unit, on a `tx` that works only until the unit settles or is given up on. */
  private runUnit(p: Pending<C>): Promise<Outcome> {
    return new Promise<Outcome>((settle) => {
      let live = true;
      const guarded: Executor = {
        rows: async (q) => {
          if (!live) throw new Error(OUTSIDE_WORK);
          return this.statements.allSync(q);
        },
        run: async (q) => {
          if (!live) throw new Error(OUTSIDE_WORK);
          return this.statements.runSync(q);
        },
      };
      const end = (outcome: Outcome) => {
        if (!live) return;
        live = false;
        clearImmediate(guard);
        settle(outcome);
      };
      const guard = setImmediate(() => end({ ok: false, value: new Error(OUTSIDE_WORK) }));
      try {
        p.work(this.context(guarded)).then(
          (value) => end({ ok: true, value }),
          (value: unknown) => end({ ok: false, value }),
        );
      } catch (value) {
        end({ ok: false, value });
      }
    });
  }

  private settleAll(batch: Pending<C>[], err: unknown): void {
    for (const p of batch) p.reject(err);
  }

  private scheduleNext(): void {
    this.scheduled = false;
    if (this.queue.length > 0) this.kick();
  }

  /** Waits for queued work to commit, then stops taking more (the caller closes the connection). */
  async close(): Promise<void> {
    if (this.queue.length) this.kick();
    while (this.scheduled || this.queue.length) await new Promise((r) => setTimeout(r, 1));
    this.closed = true;
  }
}
