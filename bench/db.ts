/**
 * What the bench reads of orderflow's database, on either backend: how many orders are open or
 * final, the outbox not yet published, and each order's shipped time and events. Read-only, and
 * beside orderflow's own code on purpose: the bench counts from the tables (and the wire, see
 * backlog.ts), not through the code it measures.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { orderStatus } from '../src/events/contracts.js';
import { FINAL_STATUSES } from '../src/orders/state.js';
import { dbTime, fromDbTime } from '../src/storage/schema.js';

export type Backend = 'sqlite' | 'postgresql';

export const backendOf = (databaseUrl: string): Backend => (/^postgres(ql)?:\/\//.test(databaseUrl) ? 'postgresql' : 'sqlite');

/** How many, and since when (epoch ms; null when none). */
export interface CountSince {
  n: number;
  oldest: number | null;
}

export interface ActivityEvent {
  order_id: string;
  subject: string;
  /** The event's own timestamp, epoch ms. */
  occurred_at: number;
}

export interface BenchDb {
  /** Orders not yet in a final state. */
  openOrders(): Promise<CountSince>;
  /** Outbox rows not yet published. */
  unpublished(): Promise<CountSince>;
  /** Orders in a final state (shipped or declined). */
  finished(): Promise<number>;
  /** The highest activity row id so far (0: none). */
  lastActivityId(): Promise<number>;
  /** Each order created since `from`: its shipped_at (epoch ms), or undefined. */
  shippedAt(from: Date): Promise<Map<string, number | undefined>>;
  /** Activity rows after `afterId` recorded by `consumer` for these subjects. */
  events(afterId: number, consumer: string, subjects: [string, string]): Promise<ActivityEvent[]>;
  close(): Promise<void>;
}

const OPEN = orderStatus.options.filter((s) => !FINAL_STATUSES.includes(s));
const FINAL = [...FINAL_STATUSES];

export function openBenchDb(databaseUrl: string): BenchDb {
  return backendOf(databaseUrl) === 'postgresql' ? postgresDb(databaseUrl) : sqliteDb(databaseUrl.replace(/^file:/, ''));
}

function sqliteDb(file: string): BenchDb {
  const db = new Database(file, { readonly: true });
  const marks = (n: number) => Array(n).fill('?').join(', ');
  // Both use an index: orders (status, …), outbox (published_at, created_at).
  const open = db.prepare(`SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM orders WHERE status IN (${marks(OPEN.length)})`).bind(...OPEN);
  const unpublished = db.prepare('SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE published_at IS NULL');
  const final = db.prepare(`SELECT COUNT(*) AS n FROM orders WHERE status IN (${marks(FINAL.length)})`).bind(...FINAL);
  const since = (r: { n: number; oldest: string | null }): CountSince => ({ n: r.n, oldest: fromDbTime(r.oldest)?.getTime() ?? null });
  return {
    openOrders: async () => since(open.get() as { n: number; oldest: string | null }),
    unpublished: async () => since(unpublished.get() as { n: number; oldest: string | null }),
    finished: async () => (final.get() as { n: number }).n,
    lastActivityId: async () => (db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM nats_activities').get() as { id: number }).id,
    shippedAt: async (from) =>
      new Map(
        (db.prepare('SELECT id, shipped_at FROM orders WHERE created_at >= ?').all(dbTime(from)) as { id: string; shipped_at: string | null }[]).map((r) => [
          r.id,
          fromDbTime(r.shipped_at)?.getTime(),
        ]),
      ),
    events: async (afterId, consumer, subjects) =>
      (
        db
          .prepare('SELECT order_id, subject, occurred_at FROM nats_activities WHERE id > ? AND consumer = ? AND subject IN (?, ?)')
          .all(afterId, consumer, ...subjects) as { order_id: string; subject: string; occurred_at: string }[]
      ).map((e) => ({ ...e, occurred_at: Date.parse(e.occurred_at) })),
    close: async () => void db.close(),
  };
}

/**
 * Times are read as epoch milliseconds computed by the server (EXTRACT(EPOCH …)), and the session
 * runs in UTC, so the figures do not depend on whether a column is `timestamp` or `timestamptz`.
 */
function postgresDb(databaseUrl: string): BenchDb {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2, options: '-c TimeZone=UTC -c default_transaction_read_only=on' });
  const ms = (col: string) => `(EXTRACT(EPOCH FROM ${col}) * 1000)::float8`;
  const list = (from: number, n: number) => Array.from({ length: n }, (_, i) => `$${from + i}`).join(', ');
  const rows = async <R>(text: string, values: unknown[] = []) => (await pool.query(text, values)).rows as R[];
  const since = (r: { n: string; oldest: number | null }): CountSince => ({ n: Number(r.n), oldest: r.oldest });
  return {
    openOrders: async () =>
      since(
        (
          await rows<{ n: string; oldest: number | null }>(
            `SELECT COUNT(*) AS n, ${ms('MIN(created_at)')} AS oldest FROM orders WHERE status IN (${list(1, OPEN.length)})`,
            OPEN,
          )
        )[0]!,
      ),
    unpublished: async () =>
      since(
        (
          await rows<{ n: string; oldest: number | null }>(`SELECT COUNT(*) AS n, ${ms('MIN(created_at)')} AS oldest FROM outbox WHERE published_at IS NULL`)
        )[0]!,
      ),
    finished: async () => Number((await rows<{ n: string }>(`SELECT COUNT(*) AS n FROM orders WHERE status IN (${list(1, FINAL.length)})`, FINAL))[0]!.n),
    lastActivityId: async () => Number((await rows<{ id: string }>('SELECT COALESCE(MAX(id), 0) AS id FROM nats_activities'))[0]!.id),
    shippedAt: async (from) =>
      new Map(
        (
          await rows<{ id: string; shipped: number | null }>(
            `SELECT id, ${ms('shipped_at')} AS shipped FROM orders WHERE created_at >= to_timestamp($1 / 1000.0)`,
            [from.getTime()],
          )
        ).map((r) => [r.id, r.shipped ?? undefined]),
      ),
    events: async (afterId, consumer, subjects) =>
      rows<ActivityEvent>(
        `SELECT order_id, subject, ${ms('occurred_at')} AS occurred_at FROM nats_activities WHERE id > $1 AND consumer = $2 AND subject IN ($3, $4)`,
        [afterId, consumer, ...subjects],
      ),
    close: () => pool.end(),
  };
}
