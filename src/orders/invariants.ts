import type { Db } from '../db/client.js';
import { FINAL_STATUSES } from './state.js';

/**
 * The promises orderflow makes, counted from the database (the source of truth):
 * every accepted order reaches a final state, none is shipped twice, no event is recorded twice.
 */
export interface InvariantReport {
  accepted: number;
  final: number;
  byStatus: Record<string, number>;
  /** Orders with more than one orders.shipped event written (each shipping writes exactly one). */
  shippedTwice: number;
  /** Activity rows that record the same event, or the same order transition, more than once. */
  duplicateActivity: number;
  unpublishedOutbox: number;
}

export async function checkInvariants(db: Db): Promise<InvariantReport> {
  const groups = await db.order.groupBy({ by: ['status'], _count: { _all: true } });
  const byStatus = Object.fromEntries(groups.map((g) => [g.status, g._count._all]));
  const accepted = groups.reduce((n, g) => n + g._count._all, 0);
  const final = groups.filter((g) => (FINAL_STATUSES as readonly string[]).includes(g.status)).reduce((n, g) => n + g._count._all, 0);

  const [shipped] = await db.$queryRaw<{ n: bigint | number }[]>`
    SELECT COUNT(*) AS n FROM (
      SELECT json_extract(payload, '$.data.order_id') AS order_id FROM outbox
      WHERE subject = 'orders.shipped' GROUP BY order_id HAVING COUNT(*) > 1)`;
  const [dupActivity] = await db.$queryRaw<{ n: bigint | number }[]>`
    SELECT COUNT(*) AS n FROM (
      SELECT consumer, order_id, subject FROM nats_activities
      WHERE order_id IS NOT NULL GROUP BY consumer, order_id, subject HAVING COUNT(*) > 1)`;
  const unpublishedOutbox = await db.outboxMessage.count({ where: { publishedAt: null } });
  return {
    accepted,
    final,
    byStatus,
    shippedTwice: Number(shipped?.n ?? 0),
    duplicateActivity: Number(dupActivity?.n ?? 0),
    unpublishedOutbox,
  };
}
