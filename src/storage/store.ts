import type { CompiledQuery, Selectable } from 'kysely';
import { type OrderStatus, orderStatus } from '../events/contracts.js';
import { DuplicateKeyError, OrderNotFoundError } from '../orders/errors.js';
import type { Activity, Order } from '../orders/order.js';
import type { StorageReads, Tx } from '../orders/ports.js';
import { IllegalTransitionError, statusesAllowing } from '../orders/state.js';
import type { Queries } from './queries.js';
import { type ActivityRow, fromDbTime, type OrderRow } from './schema.js';

/**
 * How an adapter runs a compiled statement on its connection (or inside its transaction).
 * Everything above this (the ports' behaviour, row mapping) is shared by every adapter.
 */
export interface Executor {
  /** The rows of a SELECT or of a statement with RETURNING. */
  rows<R>(query: CompiledQuery<R>): Promise<R[]>;
  /** How many rows a statement changed. */
  run(query: CompiledQuery): Promise<number>;
}

// Timestamp columns are typed as text (the generated types follow the SQLite schema); node-postgres
// hands back Dates for them, which fromDbTime takes as they are.
type Time = string | Date;

export function orderFromRow(r: Selectable<OrderRow>): Order {
  return {
    id: r.id,
    reference: r.reference,
    customerEmail: r.customer_email,
    amountCents: Number(r.amount_cents),
    currency: r.currency as string,
    status: r.status as OrderStatus,
    paymentResponse: r.payment_response as string | null,
    paymentAttempts: Number(r.payment_attempts),
    paymentError: r.payment_error as string | null,
    nextAttemptAt: fromDbTime(r.next_attempt_at as Time | null),
    correlationId: r.correlation_id as string,
    createdAt: fromDbTime(r.created_at as Time),
    updatedAt: fromDbTime(r.updated_at as Time),
    paidAt: fromDbTime(r.paid_at as Time | null),
    shippedAt: fromDbTime(r.shipped_at as Time | null),
  };
}

export function activityFromRow(r: Selectable<ActivityRow>): Activity {
  return {
    id: Number(r.id),
    consumer: r.consumer as string,
    subject: r.subject as string,
    eventId: r.event_id as string,
    eventType: r.event_type as string,
    orderId: r.order_id as string | null,
    correlationId: r.correlation_id as string | null,
    summary: r.summary as string,
    payload: r.payload as string,
    occurredAt: fromDbTime(r.occurred_at as Time),
    receivedAt: fromDbTime(r.received_at as Time),
  };
}

const first = async <R>(rows: Promise<R[]>): Promise<R | undefined> => (await rows)[0];
const count = (n: unknown) => Number(n ?? 0);

/** The ports a unit of work sees, on `exec` (the adapter's transaction). */
export function transactionPorts(exec: Executor, q: Queries): Tx {
  return {
    orders: {
      async insert(order) {
        const row = await first(exec.rows(q.insertOrder(order)));
        if (!row) throw new DuplicateKeyError(`orders.reference ${order.reference}`);
        return orderFromRow(row);
      },
      async find(id) {
        const row = await first(exec.rows(q.findOrder(id)));
        return row ? orderFromRow(row) : null;
      },
      async transition(id, to, data, at) {
        const row = await first(exec.rows(q.transitionOrder(id, to, statusesAllowing(to), data, at)));
        if (row) return orderFromRow(row);
        const current = await first(exec.rows(q.orderStatus(id)));
        throw current ? new IllegalTransitionError(id, current.status, to) : new OrderNotFoundError(id);
      },
      async claim(id, status, now, until, backingOffAfter) {
        return (await exec.run(q.claimOrder(id, status, now, until, backingOffAfter))) === 1;
      },
      async claimAwaitingPayment({ now, stuckBefore, until, limit, backingOffAfter }) {
        const rows = await exec.rows(q.claimAwaitingPayment(now, stuckBefore, until, limit, backingOffAfter));
        // RETURNING keeps no order: oldest first, as awaitingPayment lists them.
        return rows.map(orderFromRow).sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
      },
    },
    outbox: {
      async add(messages, at) {
        if (messages.length) await exec.run(q.insertOutbox(messages, at));
      },
      async markPublished(ids, at) {
        if (ids.length) await exec.run(q.markPublished(ids, at));
      },
      async recordFailure(id, error) {
        await exec.run(q.recordOutboxFailure(id, error));
      },
      async claimUnpublished({ owner, now, until, olderThan, limit }) {
        const rows = await exec.rows(q.claimUnpublished(owner, now, until, olderThan, limit));
        return rows
          .map((r) => ({
            id: r.id,
            subject: r.subject,
            payload: r.payload,
            headers: JSON.parse(r.headers) as Record<string, string>,
            createdAt: fromDbTime(r.created_at as Time),
          }))
          .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
      },
    },
    inbox: {
      async record(consumer, messageId, at) {
        return (await exec.run(q.recordInbox(consumer, messageId, at))) === 1;
      },
    },
    activity: {
      async record(row) {
        return (await exec.run(q.recordActivity(row))) === 1;
      },
    },
  };
}

/** The read side, on `exec` (a connection outside any write transaction). */
export function storageReads(exec: Executor, q: Queries): StorageReads {
  const statusCounts = async () => {
    const rows = await exec.rows(q.statusCounts());
    const byStatus: Partial<Record<OrderStatus, number>> = {};
    let total = 0;
    for (const r of rows) {
      const parsed = orderStatus.safeParse(r.status);
      if (parsed.success) byStatus[parsed.data] = count(r.n);
      total += count(r.n);
    }
    return { byStatus, total };
  };
  const outboxStats = async () => {
    const r = await first(exec.rows(q.outboxStats()));
    return { unpublished: count(r?.n), oldestUnpublishedAt: r?.oldest ? fromDbTime(r.oldest as Time) : null };
  };
  return {
    async order(id) {
      const row = await first(exec.rows(q.findOrder(id)));
      return row ? orderFromRow(row) : null;
    },
    async orderPage(page, perPage) {
      const [rows, total] = await Promise.all([exec.rows(q.orderPage(page, perPage)), first(exec.rows(q.orderCount()))]);
      const n = count(total?.n);
      return { items: rows.map(orderFromRow), page, perPage, total: n, pages: Math.max(1, Math.ceil(n / perPage)) };
    },
    orderStatuses: () => exec.rows(q.orderStatuses()),
    async activityFor(orderId) {
      return (await exec.rows(q.activityFor(orderId))).map(activityFromRow);
    },
    async isActivityRecorded(consumer, eventId) {
      return (await exec.rows(q.isActivityRecorded(consumer, eventId))).length > 0;
    },
    async awaitingPayment({ now, stuckBefore, limit, backingOffAfter }) {
      return (await exec.rows(q.awaitingPayment(now, stuckBefore, limit, backingOffAfter))).map(orderFromRow);
    },
    async unshipped({ now, paidBefore, limit }) {
      return (await exec.rows(q.unshipped(now, paidBefore, limit))).map(orderFromRow);
    },
    statusCounts,
    async invariantCounts() {
      const [counts, shipped, dup, outbox] = await Promise.all([
        statusCounts(),
        first(exec.rows(q.shippedTwice('orders.shipped'))),
        first(exec.rows(q.duplicateActivity())),
        outboxStats(),
      ]);
      return { ...counts, shippedTwice: count(shipped?.n), duplicateActivity: count(dup?.n), unpublishedOutbox: outbox.unpublished };
    },
    outboxStats,
    async throughput(since, bucketS) {
      const bucket = (rows: { b: unknown; n: unknown }[]) => rows.map((r) => ({ bucket: Number(r.b), n: count(r.n) }));
      const [created, shipped] = await Promise.all([exec.rows(q.buckets('created_at', since, bucketS)), exec.rows(q.buckets('shipped_at', since, bucketS))]);
      return { created: bucket(created), shipped: bucket(shipped) };
    },
    async recentLeadTimes(limit) {
      return (await exec.rows(q.leadTimes(limit))).map((r) => Number(r.ms));
    },
    async ping() {
      await exec.rows(q.ping());
    },
  };
}
