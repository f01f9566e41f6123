import type { CompiledQuery } from 'kysely';
import { StorageUnavailableError } from '../../orders/errors.js';
import type { Executor } from '../store.js';

/** One pooled connection, held for one transaction at a time (see adapter.ts). */
export interface Connection {
  /** A statement of a unit. Sent at once (pipelined behind what is already on the wire), answered in order. */
  rows<R>(query: CompiledQuery<R>): Promise<R[]>;
  run(query: CompiledQuery): Promise<number>;
  /** A statement without parameters (BEGIN, SAVEPOINT …, COMMIT), sent at once; resolves with its command tag. */
  command(sql: string): Promise<string>;
  /** Gives the connection back to the pool; `discard`: close it instead (its state is unknown). */
  release(discard?: unknown): void;
}

export interface GroupCommitOptions {
  /** Transactions this process runs at once, each on a connection of its own. */
  concurrency: number;
  /** Units in one transaction at most. */
  maxBatch: number;
  /** Runs of a unit that deadlocks or fails serialization, at most. */
  attempts: number;
  isRetryable(err: unknown): boolean;
  /** An error a statement met only because another unit's statement had aborted the transaction. */
  isKnockOn(err: unknown): boolean;
  /** An error after which the connection cannot serve the batch (stale prepared statements): it runs again on a fresh one. */
  needsFreshConnection(err: unknown): boolean;
}

/** Rounds of a batch together, each without the units that failed in the one before, before the rest run one by one. */
const ROUNDS = 3;

/** The batch is to run again on another connection. */
class FreshConnection extends Error {}

interface Pending<C> {
  work: (tx: C) => Promise<unknown>;
  resolve: (v: never) => void;
  reject: (e: unknown) => void;
  /** When it must be on its way (performance.now()): at once, or later for `within` work. */
  due: number;
}

type Outcome = { ok: true; value: unknown } | { ok: false; value: unknown };

export const AFTER_UNIT = 'a unit of work used its transaction after it had finished; that statement was refused';

const UNIT_SWALLOWED = 'a unit of work carried on after one of its statements failed (PostgreSQL had aborted its transaction)';

/**
 * Group commit on PostgreSQL: the units of work queued while this process's transactions are
 * busy share the next one, so N units cost one BEGIN, one COMMIT and one WAL flush instead of N.
 *
 * Why: a unit held a pooled connection from BEGIN to COMMIT, one event-loop hop per statement,
 * and on a busy process each hop waits its turn behind HTTP and NATS work; with ten connections
 * a process could not commit more than ten units per (hops × turn), whatever the server could do.
 *
 * How, for a batch on one connection (`pipeline` mode: statements are written at once and
 * answered in order, with no hop between them): BEGIN, then every unit *at the same time*, then
 * COMMIT. A batch takes as many hops as its longest unit, not the sum of its units. The units'
 * statements interleave in one transaction, each seeing the others' writes; each of orderflow's
 * statements is one conditional statement (claims, moves, `ON CONFLICT DO NOTHING`), so this
 * gives the outcomes READ COMMITTED transactions racing each other give, and nobody learns an
 * outcome before the COMMIT that makes it true.
 * If a unit fails (it throws, or a statement of it fails, which aborts the transaction for all),
 * the batch is rolled back and runs together again without it; the units that failed then run
 * one after the other, each in its own savepoint, so each gets the outcome it has on its own and
 * is rolled back alone (see `settle`). A unit is database work only (the port's rule), so running
 * it again is safe; that is already what a deadlock does to it. A unit alone in its batch is not
 * run twice to learn its outcome.
 * The database being away fails the whole batch with StorageUnavailableError.
 *
 * `within`: work nobody waits on waits that long for company (it rides along with any other
 * work queued before then).
 */
export class GroupCommit<C> {
  private queue: Pending<C>[] = [];
  private running = 0;
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Number.POSITIVE_INFINITY;
  private closed = false;
  private idle: (() => void) | undefined;

  constructor(
    private readonly connect: () => Promise<Connection>,
    /** What a unit of work is given, on the executor of its statements (orderflow's Tx). */
    private readonly context: (exec: Executor) => C,
    private readonly opts: GroupCommitOptions,
  ) {}

  run<T>(work: (tx: C) => Promise<T>, opts: { within?: number } = {}): Promise<T> {
    if (this.closed) return Promise.reject(new StorageUnavailableError('the database is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve: resolve as (v: never) => void, reject, due: performance.now() + (opts.within ?? 0) });
      this.schedule();
    });
  }

  /** Starts a batch at the next turn when one is due and a transaction is free; else a timer for the earliest due. */
  private schedule(): void {
    if (this.scheduled || this.queue.length === 0 || this.running >= this.opts.concurrency) return;
    let due = Number.POSITIVE_INFINITY;
    for (const p of this.queue) if (p.due < due) due = p.due;
    const wait = due - performance.now();
    if (wait <= 0) {
      this.scheduled = true;
      // What else is queued in this turn comes along.
      setImmediate(() => this.flush());
    } else if (due < this.timerDue) {
      clearTimeout(this.timer);
      this.timerDue = due;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.timerDue = Number.POSITIVE_INFINITY;
        this.schedule();
      }, wait);
    }
  }

  private flush(): void {
    this.scheduled = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Number.POSITIVE_INFINITY;
    while (this.running < this.opts.concurrency && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.opts.maxBatch);
      this.running++;
      void this.commit(batch).finally(() => {
        this.running--;
        this.schedule();
        if (this.running === 0 && this.queue.length === 0) this.idle?.();
      });
    }
  }

  private async commit(batch: Pending<C>[]): Promise<void> {
    for (let tries = 1; ; tries++) {
      let conn: Connection;
      try {
        conn = await this.connect();
      } catch (err) {
        for (const p of batch) p.reject(err);
        return;
      }
      let discard: unknown;
      try {
        const outcomes = await this.settle(conn, batch);
        for (const [i, p] of batch.entries()) {
          const o = outcomes[i]!;
          if (o.ok) p.resolve(o.value as never);
          else p.reject(o.value);
        }
        return;
      } catch (err) {
        // The connection failed, or the transaction ended in a way we did not ask for: nothing of
        // the batch is known to be committed, and the connection is not reused.
        discard = err;
        if (err instanceof FreshConnection && tries < 3) continue;
        for (const p of batch) p.reject(err instanceof FreshConnection ? err.cause : err);
        return;
      } finally {
        conn.release(discard);
      }
    }
  }

  /** A failed unit's error, unless it means the whole batch fails (the database away) or runs elsewhere. */
  private check(outcomes: Outcome[]): void {
    for (const o of outcomes) {
      if (o.ok) continue;
      if (o.value instanceof StorageUnavailableError) throw o.value;
      if (this.opts.needsFreshConnection(o.value)) throw new FreshConnection('stale connection', { cause: o.value });
    }
  }

  /**
   * The batch together; when units fail, the batch is rolled back and runs together again without
   * them (a few rounds at most), then they run one by one after it, each getting the outcome it
   * has on its own, once the others have committed. A unit whose statement failed only because
   * another's had aborted the transaction (knock-on) stays with the batch.
   */
  private async settle(conn: Connection, batch: Pending<C>[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = new Array(batch.length);
    let group = batch.map((_, i) => i);
    const alone: number[] = [];
    for (let round = 1; group.length > 0; round++) {
      const tried = await this.together(
        conn,
        group.map((i) => batch[i]!),
      );
      if (tried.committed || group.length === 1) {
        group.forEach((i, k) => {
          outcomes[i] = tried.outcomes[k]!;
        });
        break;
      }
      const failing: number[] = [];
      const guilty: number[] = [];
      group.forEach((i, k) => {
        const o = tried.outcomes[k]!;
        if (o.ok) return;
        failing.push(i);
        if (!this.opts.isKnockOn(o.value)) guilty.push(i);
      });
      const out = round >= ROUNDS ? group : guilty.length ? guilty : failing;
      alone.push(...out);
      group = group.filter((i) => !out.includes(i));
    }
    if (alone.length) {
      const each = await this.oneByOne(
        conn,
        alone.map((i) => batch[i]!),
      );
      alone.forEach((i, k) => {
        outcomes[i] = each[k]!;
      });
    }
    return outcomes;
  }

  /**
   * Every unit at once in one transaction: committed, or rolled back when a unit failed. A unit
   * alone whose failure is a deadlock or serialization failure runs again.
   */
  private async together(conn: Connection, units: Pending<C>[]): Promise<{ committed: boolean; outcomes: Outcome[] }> {
    for (let attempt = 1; ; attempt++) {
      const begin = conn.command('BEGIN');
      begin.catch(() => {}); // awaited below, after the units: not an unhandled rejection meanwhile
      const outcomes = await Promise.all(units.map((p) => this.attempt(conn, p)));
      await begin;
      const failed = outcomes.find((o) => !o.ok);
      if (!failed) {
        if ((await conn.command('COMMIT')) !== 'COMMIT') throw new Error('PostgreSQL rolled back a transaction whose units all succeeded');
        return { committed: true, outcomes };
      }
      await conn.command('ROLLBACK');
      this.check(outcomes);
      if (units.length > 1 || attempt >= this.opts.attempts || !this.opts.isRetryable(failed.value)) return { committed: false, outcomes };
    }
  }

  /** One unit after the other in one transaction, each in a savepoint: a failing one is rolled back alone. */
  private async oneByOne(conn: Connection, batch: Pending<C>[]): Promise<Outcome[]> {
    const ignore = () => {};
    conn.command('BEGIN').catch(ignore);
    const outcomes: Outcome[] = [];
    for (const p of batch) {
      let o: Outcome;
      for (let attempt = 1; ; attempt++) {
        conn.command('SAVEPOINT unit').catch(ignore);
        o = await this.attempt(conn, p);
        if (o.ok) break;
        this.check([o]);
        await conn.command('ROLLBACK TO SAVEPOINT unit');
        if (attempt >= this.opts.attempts || !this.opts.isRetryable(o.value)) break;
      }
      conn.command('RELEASE SAVEPOINT unit').catch(ignore);
      outcomes.push(o);
    }
    // A savepoint command that failed left the transaction aborted: COMMIT then says ROLLBACK.
    if ((await conn.command('COMMIT')) !== 'COMMIT') throw new Error('PostgreSQL rolled back a transaction whose failed units had been rolled back');
    return outcomes;
  }

  /** One run of a unit, on a `tx` that works until the unit settles. Fails if it swallowed a statement's error. */
  private attempt(conn: Connection, p: Pending<C>): Promise<Outcome> {
    return new Promise<Outcome>((settle) => {
      let live = true;
      let statementError: unknown;
      const guard =
        <A, R>(fn: (q: A) => Promise<R>) =>
        async (q: A): Promise<R> => {
          if (!live) throw new Error(AFTER_UNIT);
          try {
            return await fn(q);
          } catch (err) {
            statementError ??= err;
            throw err;
          }
        };
      const exec: Executor = { rows: guard((q) => conn.rows(q)) as Executor['rows'], run: guard((q: CompiledQuery) => conn.run(q)) };
      const end = (o: Outcome) => {
        if (!live) return;
        live = false;
        // After a failed statement PostgreSQL ignores the rest of the transaction: the unit's
        // success would be a lie (SQLite would have kept its other writes; here none survive).
        if (o.ok && statementError !== undefined)
          o = {
            ok: false,
            value: statementError instanceof Error ? new Error(`${UNIT_SWALLOWED}: ${statementError.message}`, { cause: statementError }) : statementError,
          };
        settle(o);
      };
      try {
        p.work(this.context(exec)).then(
          (value) => end({ ok: true, value }),
          (value: unknown) => end({ ok: false, value }),
        );
      } catch (value) {
        end({ ok: false, value });
      }
    });
  }

  /** Waits for queued and running work to commit, then takes no more. */
  async close(): Promise<void> {
    if (this.queue.length || this.running) {
      const done = new Promise<void>((r) => (this.idle = r));
      for (const p of this.queue) p.due = 0;
      this.schedule();
      await done;
    }
    this.closed = true;
    clearTimeout(this.timer);
  }
}
