import type Database from 'better-sqlite3';
import type { CompiledQuery } from 'kysely';
import { StorageUnavailableError } from '../../orders/errors.js';
import type { Executor } from '../store.js';
import { isBusy, translate } from './errors.js';
import type { LockHandoff } from './handoff.js';

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

/** Counters since open. */
export interface WriterStats {
  /** Transactions (BEGIN … COMMIT or ROLLBACK). */
  flushes: number;
  units: number;
  /** BEGINs refused because another connection held the write lock. */
  busy: number;
  /** Time holding the write lock, from BEGIN to the end of its COMMIT. */
  lockMs: number;
  /** Of which in COMMIT (the WAL's fsync). */
  commitMs: number;
  /** Time between a refused BEGIN and the one that took the lock. */
  waitMs: number;
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
 * How: `run(work)` queues a unit of work; everything queued when the flush runs (a `setImmediate`
 * after the first, so one event-loop turn's units share it) runs in one `BEGIN IMMEDIATE … COMMIT`,
 * each unit in its own savepoint when there are several (one unit failing rolls back only itself),
 * awaited one after the other. better-sqlite3 is synchronous and statements are compiled once
 * (queries.ts), so a unit's statements resolve at once and the whole transaction completes within
 * the microtask queue: the lock is held for the statements' native work plus one fsync
 * (synchronous=FULL: durable before anyone is told). A unit still pending when a `setImmediate`
 * fires has awaited something else (real I/O): it is rolled back and rejected (OUTSIDE_WORK)
 * rather than hold the lock across event-loop turns, and its `tx` refuses further statements.
 * When another process holds the lock the connection does not sleep inside SQLite (busy_timeout
 * 0): it waits for that writer's release (handoff.ts), or a timer, so the process keeps serving.
 */
export class GroupCommitWriter<C> {
  private readonly statements: Statements;
  private queue: Pending<C>[] = [];
  /** A flush is due (on an immediate, or waiting for the lock). */
  private scheduled = false;
  private lazyTimer: NodeJS.Timeout | undefined;
  private busySince = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  /** The handoff is watching for another writer's release (while this one waits). */
  private watching = false;
  private closed = false;
  readonly stats: WriterStats = { flushes: 0, units: 0, busy: 0, lockMs: 0, commitMs: 0, waitMs: 0 };

  private readonly lockTimeoutMs: number;
  private readonly retryMs: number;
  private readonly handoff: LockHandoff | undefined;
  private readonly afterCommit: (() => void) | undefined;

  constructor(
    readonly conn: Database.Database,
    /** What a unit of work is given, on the executor of its savepoint (orderflow's Tx). */
    private readonly context: (exec: Executor) => C,
    opts: {
      /** Give up on a lock held this long by someone else. */
      lockTimeoutMs?: number | undefined;
      /** Wakes other processes' writers when this one releases the lock, and this one when they do (none: timers alone). */
      handoff?: LockHandoff | undefined;
      /** While the lock is held elsewhere, look again this often (1-2 ms: jittered) even without a wake-up. */
      retryMs?: number;
      /** After each COMMIT, with the lock released (the checkpointer's look at the WAL). */
      afterCommit?: (() => void) | undefined;
    } = {},
  ) {
    this.statements = new Statements(conn);
    this.lockTimeoutMs = opts.lockTimeoutMs ?? 10_000;
    this.retryMs = opts.retryMs ?? 1;
    this.handoff = opts.handoff;
    this.afterCommit = opts.afterCommit;
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
    setImmediate(() => void this.flush());
  }

  /** BEGIN IMMEDIATE; false when the lock is taken (a retry is arranged) or the batch failed. */
  private begin(): boolean {
    try {
      this.statements.stmt('BEGIN IMMEDIATE').run();
      if (this.busySince) this.stats.waitMs += performance.now() - this.busySince;
      this.endWait();
      return true;
    } catch (err) {
      this.busySince ||= performance.now();
      const gaveUp = performance.now() - this.busySince > this.lockTimeoutMs;
      if (!isBusy(err) || gaveUp) {
        this.endWait();
        const batch = this.queue;
        this.queue = [];
        this.settleAll(batch, gaveUp ? new StorageUnavailableError(`database is locked (waited ${this.lockTimeoutMs} ms)`) : translate(err));
        this.scheduleNext();
        return false;
      }
      this.stats.busy++;
      return false;
    }
  }

  /**
   * After a refused BEGIN: another process holds the write lock. Tries again, with whatever queued
   * meanwhile, when that writer lets go (the handoff's watch, kept for the whole wait) or when the
   * timer fires. The lock may have gone between the refusal and the start of the watch, so one
   * more look right after it starts: true if that took the lock.
   */
  private retryLater(): boolean {
    if (!this.busySince) return false; // refused for good: the batch has been settled
    if (this.handoff && !this.watching) {
      this.watching = this.handoff.watch(() => this.wake());
      if (this.watching && this.begin()) return true;
      if (!this.busySince) return false;
    }
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.wake(), this.retryMs * (1 + Math.random()));
    return false;
  }

  private wake(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.busySince) void this.flush();
  }

  private async flush(): Promise<void> {
    if (!this.begin() && !this.retryLater()) return;
    const batch = this.queue;
    this.queue = [];
    const s = this.statements;
    const lockedAt = performance.now();
    const results: Outcome[] = [];
    try {
      if (batch.length === 1) {
        // Alone in its transaction, a unit needs no savepoint: if it fails, nothing is committed.
        const outcome = await this.runUnit(batch[0]!);
        results.push(outcome);
        if (!outcome.ok) s.stmt('ROLLBACK').run();
      } else {
        for (const p of batch) {
          s.stmt('SAVEPOINT unit').run();
          const outcome = await this.runUnit(p);
          if (!outcome.ok) s.stmt('ROLLBACK TO unit').run();
          s.stmt('RELEASE unit').run();
          results.push(outcome);
        }
      }
      if (this.conn.inTransaction) {
        const committing = performance.now();
        s.stmt('COMMIT').run();
        this.stats.commitMs += performance.now() - committing;
      }
      this.released(batch.length, lockedAt);
      this.afterCommit?.();
    } catch (err) {
      if (this.conn.inTransaction) s.stmt('ROLLBACK').run();
      this.released(batch.length, lockedAt);
      this.settleAll(batch, translate(err));
      return this.scheduleNext();
    }
    this.scheduleNext();
    for (const [i, p] of batch.entries()) {
      if (results[i]!.ok) p.resolve(results[i]!.value as never);
      else p.reject(results[i]!.value);
    }
  }

  private endWait(): void {
    this.busySince = 0;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.watching) this.handoff?.unwatch();
    this.watching = false;
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

  /** The transaction ended (committed or rolled back): the lock is free for the next writer. */
  private released(units: number, lockedAt: number): void {
    this.handoff?.released();
    this.stats.flushes++;
    this.stats.units += units;
    this.stats.lockMs += performance.now() - lockedAt;
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
