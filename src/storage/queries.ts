import { type CompiledQuery, type ExpressionBuilder, type Kysely, sql } from 'kysely';
import type { OrderStatus } from '../events/contracts.js';
import type { NewActivity, NewOrder, TransitionData } from '../orders/order.js';
import type { OutboxMessage } from '../outbox/outbox.js';
import { compiler, type DB, type Dialect, dbTime } from './schema.js';

/**
 * An order is due for re-driving when it has no retry time or it has come; with `backingOffAfter`
 * (catching up after an outage) also when it is later than that: a retry timer, not a claim.
 */
const due = (eb: ExpressionBuilder<DB, 'orders'>, now: Date, backingOffAfter?: Date) => [
  eb('next_attempt_at', 'is', null),
  eb('next_attempt_at', '<=', dbTime(now)),
  ...(backingOffAfter ? [eb('next_attempt_at', '>', dbTime(backingOffAfter))] : []),
];

/** `payment_pending` and due, or `created` before `stuckBefore` (a crash before the payment service was asked) and due. */
const awaiting = (eb: ExpressionBuilder<DB, 'orders'>, now: Date, stuckBefore: Date, backingOffAfter?: Date) =>
  eb.and([
    eb.or([eb('status', '=', 'payment_pending'), eb.and([eb('status', '=', 'created'), eb('created_at', '<', dbTime(stuckBefore))])]),
    eb.or(due(eb, now, backingOffAfter)),
  ]);

/**
 * Every statement of orderflow, written once with Kysely's builder and compiled for one dialect.
 * An adapter runs what these return ({ sql, parameters }) on its driver. The few things the two
 * dialects spell differently (row locks for claims, epoch seconds, intervals) are branches here,
 * on `this.dialect`, and nowhere else.
 */
export class Queries {
  readonly db: Kysely<DB>;

  constructor(readonly dialect: Dialect) {
    this.db = compiler(dialect);
  }

  // ---- orders -----------------------------------------------------------------------------------

  /** Inserts unless the id or reference is taken (then no row comes back: no error aborts the transaction). */
  insertOrder(o: NewOrder) {
    const at = dbTime(o.createdAt);
    return this.db
      .insertInto('orders')
      .values({
        id: o.id,
        reference: o.reference,
        customer_email: o.customerEmail,
        amount_cents: o.amountCents,
        currency: o.currency,
        status: 'created',
        payment_attempts: 0,
        correlation_id: o.correlationId,
        created_at: at,
        updated_at: at,
      })
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .compile();
  }

  findOrder(id: string) {
    return this.db.selectFrom('orders').selectAll().where('id', '=', id).compile();
  }

  orderStatus(id: string) {
    return this.db.selectFrom('orders').select('status').where('id', '=', id).compile();
  }

  /** UPDATE … WHERE id = ? AND status IN (allowed) RETURNING *: the move happens at most once. */
  transitionOrder(id: string, to: OrderStatus, allowed: readonly OrderStatus[], data: TransitionData, at: Date) {
    const time = (d: Date | null | undefined) => (d === undefined ? undefined : d === null ? null : dbTime(d));
    const fields = {
      payment_response: data.paymentResponse,
      payment_error: data.paymentError,
      paid_at: time(data.paidAt),
      shipped_at: time(data.shippedAt),
      next_attempt_at: time(data.nextAttemptAt),
    };
    const set = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
    return this.db
      .updateTable('orders')
      .set((eb) => ({
        status: to,
        updated_at: dbTime(at),
        ...set,
        ...(data.incrementAttempts ? { payment_attempts: eb('payment_attempts', '+', 1) } : {}),
      }))
      .where('id', '=', id)
      .where('status', 'in', [...allowed])
      .returningAll()
      .compile();
  }

  claimOrder(id: string, status: OrderStatus, now: Date, until: Date, backingOffAfter?: Date) {
    return this.db
      .updateTable('orders')
      .set({ next_attempt_at: dbTime(until) })
      .where('id', '=', id)
      .where('status', '=', status)
      .where((eb) => eb.or(due(eb, now, backingOffAfter)))
      .compile();
  }

  orderPage(page: number, perPage: number) {
    return this.db
      .selectFrom('orders')
      .selectAll()
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(perPage)
      .offset((page - 1) * perPage)
      .compile();
  }

  orderCount() {
    return this.db
      .selectFrom('orders')
      .select((eb) => eb.fn.countAll().as('n'))
      .compile();
  }

  orderStatuses() {
    return this.db.selectFrom('orders').select(['id', 'status']).compile();
  }

  statusCounts() {
    return this.db
      .selectFrom('orders')
      .select((eb) => ['status', eb.fn.countAll().as('n')])
      .groupBy('status')
      .compile();
  }

  awaitingPayment(now: Date, stuckBefore: Date, limit: number, backingOffAfter?: Date) {
    return this.db
      .selectFrom('orders')
      .selectAll()
      .where((eb) => awaiting(eb, now, stuckBefore, backingOffAfter))
      .orderBy('created_at')
      .limit(limit)
      .compile();
  }

  /**
   * One statement claims a batch: UPDATE … WHERE id IN (the oldest orders awaiting payment) AND
   * still awaiting RETURNING *. On PostgreSQL the inner SELECT locks them FOR UPDATE SKIP LOCKED,
   * so a second reconciler's claim takes the next ones rather than waiting for the first (and the
   * outer condition re-checks a row it did wait for); SQLite has one writer at a time anyway.
   */
  claimAwaitingPayment(now: Date, stuckBefore: Date, until: Date, limit: number, backingOffAfter?: Date) {
    let oldest = this.db
      .selectFrom('orders')
      .select('id')
      .where((eb) => awaiting(eb, now, stuckBefore, backingOffAfter))
      .orderBy('created_at')
      .limit(limit);
    if (this.dialect === 'postgresql') oldest = oldest.forUpdate().skipLocked();
    return this.db
      .updateTable('orders')
      .set({ next_attempt_at: dbTime(until) })
      .where('id', 'in', oldest)
      .where((eb) => awaiting(eb, now, stuckBefore, backingOffAfter))
      .returningAll()
      .compile();
  }

  unshipped(now: Date, paidBefore: Date, limit: number) {
    return this.db
      .selectFrom('orders')
      .selectAll()
      .where('status', '=', 'paid')
      .where('paid_at', '<', dbTime(paidBefore))
      .where((eb) => eb.or([eb('next_attempt_at', 'is', null), eb('next_attempt_at', '<=', dbTime(now))]))
      .orderBy('paid_at')
      .limit(limit)
      .compile();
  }

  /** Orders created (or shipped) per bucket since `since`: bucket = floor(epoch seconds / bucketS). */
  buckets(column: 'created_at' | 'shipped_at', since: Date, bucketS: number) {
    const ref = sql.ref(column);
    // A literal, not a parameter: an integer both ways (better-sqlite3 binds numbers as REAL).
    const size = sql.lit(Math.trunc(bucketS));
    const bucket =
      this.dialect === 'sqlite' ? sql<number>`CAST(strftime('%s', ${ref}) AS INTEGER) / ${size}` : sql<number>`FLOOR(EXTRACT(EPOCH FROM ${ref}) / ${size})`;
    return this.db
      .selectFrom('orders')
      .select((eb) => [bucket.as('b'), eb.fn.countAll().as('n')])
      .where(column, '>=', dbTime(since))
      .groupBy('b')
      .compile();
  }

  leadTimes(limit: number) {
    const ms =
      this.dialect === 'sqlite'
        ? sql<number>`(julianday(shipped_at) - julianday(created_at)) * 86400000.0`
        : sql<number>`EXTRACT(EPOCH FROM (shipped_at - created_at)) * 1000`;
    return this.db.selectFrom('orders').select(ms.as('ms')).where('shipped_at', 'is not', null).orderBy('shipped_at', 'desc').limit(limit).compile();
  }

  // ---- outbox -----------------------------------------------------------------------------------

  insertOutbox(messages: OutboxMessage[], at: Date) {
    const created_at = dbTime(at);
    return this.db
      .insertInto('outbox')
      .values(messages.map((m) => ({ id: m.id, subject: m.subject, payload: m.payload, headers: JSON.stringify(m.headers), created_at, attempts: 0 })))
      .compile();
  }

  markPublished(ids: string[], at: Date) {
    return this.db
      .updateTable('outbox')
      .set({ published_at: dbTime(at), claimed_by: null, claimed_until: null })
      .where('id', 'in', ids)
      .compile();
  }

  recordOutboxFailure(id: string, error: string) {
    return this.db
      .updateTable('outbox')
      .set((eb) => ({ attempts: eb('attempts', '+', 1), last_error: error.slice(0, 500) }))
      .where('id', '=', id)
      .compile();
  }

  /**
   * One statement leases the rows: UPDATE … WHERE id IN (the oldest free ones) RETURNING. On
   * PostgreSQL the inner SELECT locks them FOR UPDATE SKIP LOCKED, so a second relay's claim skips
   * rows the first is leasing rather than waiting for it; SQLite has one writer at a time anyway.
   */
  claimUnpublished(owner: string, now: Date, until: Date, olderThan: Date, limit: number) {
    const nowAt = dbTime(now);
    let free = this.db
      .selectFrom('outbox')
      .select('id')
      .where('published_at', 'is', null)
      .where('created_at', '<', dbTime(olderThan))
      // A relay re-takes its own leases at once (say after a failed publish stopped its batch).
      .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<=', nowAt), eb('claimed_by', '=', owner)]))
      .orderBy('created_at')
      .limit(limit);
    if (this.dialect === 'postgresql') free = free.forUpdate().skipLocked();
    return this.db
      .updateTable('outbox')
      .set({ claimed_by: owner, claimed_until: dbTime(until) })
      .where('id', 'in', free)
      .returning(['id', 'subject', 'payload', 'headers', 'created_at'])
      .compile();
  }

  outboxStats() {
    return this.db
      .selectFrom('outbox')
      .select((eb) => [eb.fn.countAll().as('n'), eb.fn.min('created_at').as('oldest')])
      .where('published_at', 'is', null)
      .compile();
  }

  // ---- inbox and activity -----------------------------------------------------------------------

  recordInbox(consumer: string, messageId: string, at: Date) {
    return this.db
      .insertInto('processed_messages')
      .values({ consumer, message_id: messageId, processed_at: dbTime(at) })
      .onConflict((oc) => oc.doNothing())
      .compile();
  }

  recordActivity(a: NewActivity) {
    return this.db
      .insertInto('nats_activities')
      .values({
        consumer: a.consumer,
        subject: a.subject,
        event_id: a.eventId,
        event_type: a.eventType,
        order_id: a.orderId,
        correlation_id: a.correlationId,
        summary: a.summary,
        payload: a.payload,
        occurred_at: dbTime(a.occurredAt),
        received_at: dbTime(a.receivedAt),
      })
      .onConflict((oc) => oc.doNothing())
      .compile();
  }

  activityFor(orderId: string) {
    return this.db.selectFrom('nats_activities').selectAll().where('order_id', '=', orderId).orderBy('occurred_at').orderBy('id').compile();
  }

  isActivityRecorded(consumer: string, eventId: string) {
    return this.db.selectFrom('nats_activities').select(sql<number>`1`.as('one')).where('consumer', '=', consumer).where('event_id', '=', eventId).compile();
  }

  /** Orders whose `subject` was recorded under more than one event id. */
  shippedTwice(subject: string) {
    const twice = this.db
      .selectFrom('nats_activities')
      .select('order_id')
      .where('subject', '=', subject)
      .where('order_id', 'is not', null)
      .groupBy('order_id')
      .having((eb) => eb.fn.count('event_id').distinct(), '>', 1)
      .as('t');
    return this.db
      .selectFrom(twice)
      .select((eb) => eb.fn.countAll().as('n'))
      .compile();
  }

  /** (consumer, order, subject) recorded under more than one event id: one transition published twice. */
  duplicateActivity() {
    const dup = this.db
      .selectFrom('nats_activities')
      .select(['consumer', 'order_id', 'subject'])
      .where('order_id', 'is not', null)
      .groupBy(['consumer', 'order_id', 'subject'])
      .having((eb) => eb.fn.count('event_id').distinct(), '>', 1)
      .as('t');
    return this.db
      .selectFrom(dup)
      .select((eb) => eb.fn.countAll().as('n'))
      .compile();
  }

  ping() {
    return sql<{ one: number }>`SELECT 1 AS one`.compile(this.db);
  }
}

/** The rows a compiled query gives back. */
export type RowOf<Q> = Q extends CompiledQuery<infer R> ? R : never;
