import { type CompiledQuery, type ExpressionBuilder, type Kysely, sql } from 'kysely';
import type { OrderStatus } from '../events/contracts.js';
import type { NewActivity, NewOrder, TransitionData } from '../orders/order.js';
import type { OutboxMessage } from '../outbox/outbox.js';
import { compiler, type DB, type Dialect, dbTime } from './schema.js';
import { Shapes } from './shapes.js';

/**
 * An order is due for re-driving when it has no retry time or it has come; with `backingOffAfter`
 * (catching up after an outage) also when it is later than that: a retry timer, not a claim.
 */
const due = (eb: ExpressionBuilder<DB, 'orders'>, now: string, backingOffAfter?: string) => [
  eb('next_attempt_at', 'is', null),
  eb('next_attempt_at', '<=', now),
  ...(backingOffAfter !== undefined ? [eb('next_attempt_at', '>', backingOffAfter)] : []),
];

const time = (d: Date | null | undefined) => (d === undefined ? undefined : d === null ? null : dbTime(d));

/** `payment_pending` and due, or `created` before `stuckBefore` (a crash before the payment service was asked) and due. */
const awaiting = (eb: ExpressionBuilder<DB, 'orders'>, now: string, stuckBefore: string, backingOffAfter?: string) =>
  eb.and([
    eb.or([eb('status', '=', 'payment_pending'), eb.and([eb('status', '=', 'created'), eb('created_at', '<', stuckBefore)])]),
    eb.or(due(eb, now, backingOffAfter)),
  ]);

/**
 * Every statement of orderflow, written once with Kysely's builder and compiled for one dialect,
 * once per shape (shapes.ts): each call binds its values (`p`) into the shape's compiled SQL. An
 * adapter runs what these return ({ sql, parameters }) on its driver. The few things the two
 * dialects spell differently (row locks for claims, epoch seconds, intervals) are branches here,
 * on `this.dialect`, and nowhere else.
 */
export class Queries {
  readonly db: Kysely<DB>;
  private readonly shapes = new Shapes();

  constructor(readonly dialect: Dialect) {
    this.db = compiler(dialect);
  }

  // ---- orders -----------------------------------------------------------------------------------

  /** Inserts unless the id or reference is taken (then no row comes back: no error aborts the transaction). */
  insertOrder(o: NewOrder) {
    const args = {
      id: o.id,
      reference: o.reference,
      email: o.customerEmail,
      cents: o.amountCents,
      currency: o.currency,
      cid: o.correlationId,
      at: dbTime(o.createdAt),
    };
    return this.shapes.bind('insertOrder', args, (p) =>
      this.db
        .insertInto('orders')
        .values({
          id: p.id,
          reference: p.reference,
          customer_email: p.email,
          amount_cents: p.cents,
          currency: p.currency,
          status: 'created',
          payment_attempts: 0,
          correlation_id: p.cid,
          created_at: p.at,
          updated_at: p.at,
        })
        .onConflict((oc) => oc.doNothing())
        .returningAll(),
    );
  }

  findOrder(id: string) {
    return this.shapes.bind('findOrder', { id }, (p) => this.db.selectFrom('orders').selectAll().where('id', '=', p.id));
  }

  orderStatus(id: string) {
    return this.shapes.bind('orderStatus', { id }, (p) => this.db.selectFrom('orders').select('status').where('id', '=', p.id));
  }

  /** UPDATE … WHERE id = ? AND status IN (allowed) RETURNING *: the move happens at most once. */
  transitionOrder(id: string, to: OrderStatus, allowed: readonly OrderStatus[], data: TransitionData, at: Date) {
    const fields = {
      payment_response: data.paymentResponse,
      payment_error: data.paymentError,
      paid_at: time(data.paidAt),
      shipped_at: time(data.shippedAt),
      next_attempt_at: time(data.nextAttemptAt),
    };
    // Which columns it sets, the target and what it may move from make the shape; the values are bound.
    const set = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Record<string, string | null>;
    const shape = `transition|${to}|${allowed.join()}|${Object.keys(set).join()}|${data.incrementAttempts ? '+1' : ''}`;
    const args: Record<string, string | null> = { ...set, id, at: dbTime(at) };
    return this.shapes.bind(shape, args, (p) =>
      this.db
        .updateTable('orders')
        .set((eb) => ({
          status: to,
          updated_at: p.at as string,
          ...Object.fromEntries(Object.keys(set).map((k) => [k, p[k]])),
          ...(data.incrementAttempts ? { payment_attempts: eb('payment_attempts', '+', 1) } : {}),
        }))
        .where('id', '=', p.id as string)
        .where('status', 'in', [...allowed])
        .returningAll(),
    );
  }

  claimOrder(id: string, status: OrderStatus, now: Date, until: Date, backingOffAfter?: Date) {
    const args = { id, status, now: dbTime(now), until: dbTime(until), after: backingOffAfter ? dbTime(backingOffAfter) : null };
    return this.shapes.bind(backingOffAfter ? 'claimOrder|backingOff' : 'claimOrder', args, (p) =>
      this.db
        .updateTable('orders')
        .set({ next_attempt_at: p.until })
        .where('id', '=', p.id)
        .where('status', '=', p.status)
        .where((eb) => eb.or(due(eb, p.now, backingOffAfter ? (p.after as string) : undefined))),
    );
  }

  orderPage(page: number, perPage: number) {
    return this.shapes.bind('orderPage', { limit: perPage, offset: (page - 1) * perPage }, (p) =>
      this.db.selectFrom('orders').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(p.limit).offset(p.offset),
    );
  }

  orderCount() {
    return this.shapes.bind('orderCount', {}, () => this.db.selectFrom('orders').select((eb) => eb.fn.countAll().as('n')));
  }

  orderStatuses() {
    return this.shapes.bind('orderStatuses', {}, () => this.db.selectFrom('orders').select(['id', 'status']));
  }

  statusCounts() {
    return this.shapes.bind('statusCounts', {}, () =>
      this.db
        .selectFrom('orders')
        .select((eb) => ['status', eb.fn.countAll().as('n')])
        .groupBy('status'),
    );
  }

  awaitingPayment(now: Date, stuckBefore: Date, limit: number, backingOffAfter?: Date) {
    const args = { now: dbTime(now), stuck: dbTime(stuckBefore), limit, after: backingOffAfter ? dbTime(backingOffAfter) : null };
    return this.shapes.bind(backingOffAfter ? 'awaitingPayment|backingOff' : 'awaitingPayment', args, (p) =>
      this.db
        .selectFrom('orders')
        .selectAll()
        .where((eb) => awaiting(eb, p.now, p.stuck, backingOffAfter ? (p.after as string) : undefined))
        .orderBy('created_at')
        .limit(p.limit),
    );
  }

  /**
   * One statement claims a batch: UPDATE … WHERE id IN (the oldest orders awaiting payment) AND
   * still awaiting RETURNING *. On PostgreSQL the inner SELECT locks them FOR UPDATE SKIP LOCKED,
   * so a second reconciler's claim takes the next ones rather than waiting for the first (and the
   * outer condition re-checks a row it did wait for); SQLite has one writer at a time anyway.
   */
  claimAwaitingPayment(now: Date, stuckBefore: Date, until: Date, limit: number, backingOffAfter?: Date) {
    const args = { now: dbTime(now), stuck: dbTime(stuckBefore), until: dbTime(until), limit, after: backingOffAfter ? dbTime(backingOffAfter) : null };
    return this.shapes.bind(backingOffAfter ? 'claimAwaitingPayment|backingOff' : 'claimAwaitingPayment', args, (p) => {
      const after = backingOffAfter ? (p.after as string) : undefined;
      let oldest = this.db
        .selectFrom('orders')
        .select('id')
        .where((eb) => awaiting(eb, p.now, p.stuck, after))
        .orderBy('created_at')
        .limit(p.limit);
      if (this.dialect === 'postgresql') oldest = oldest.forUpdate().skipLocked();
      return this.db
        .updateTable('orders')
        .set({ next_attempt_at: p.until })
        .where('id', 'in', oldest)
        .where((eb) => awaiting(eb, p.now, p.stuck, after))
        .returningAll();
    });
  }

  unshipped(now: Date, paidBefore: Date, limit: number) {
    return this.shapes.bind('unshipped', { now: dbTime(now), paidBefore: dbTime(paidBefore), limit }, (p) =>
      this.db
        .selectFrom('orders')
        .selectAll()
        .where('status', '=', 'paid')
        .where('paid_at', '<', p.paidBefore)
        .where((eb) => eb.or([eb('next_attempt_at', 'is', null), eb('next_attempt_at', '<=', p.now)]))
        .orderBy('paid_at')
        .limit(p.limit),
    );
  }

  /** Orders created (or shipped) per bucket since `since`: bucket = floor(epoch seconds / bucketS). */
  buckets(column: 'created_at' | 'shipped_at', since: Date, bucketS: number) {
    // The bucket size is a literal, not a parameter (an integer both ways: better-sqlite3 binds
    // numbers as REAL), so it is part of the shape.
    const seconds = Math.trunc(bucketS);
    return this.shapes.bind(`buckets|${column}|${seconds}`, { since: dbTime(since) }, (p) => {
      const ref = sql.ref(column);
      const size = sql.lit(seconds);
      const bucket =
        this.dialect === 'sqlite' ? sql<number>`CAST(strftime('%s', ${ref}) AS INTEGER) / ${size}` : sql<number>`FLOOR(EXTRACT(EPOCH FROM ${ref}) / ${size})`;
      return this.db
        .selectFrom('orders')
        .select((eb) => [bucket.as('b'), eb.fn.countAll().as('n')])
        .where(column, '>=', p.since)
        .groupBy('b');
    });
  }

  leadTimes(limit: number) {
    const ms =
      this.dialect === 'sqlite'
        ? sql<number>`(julianday(shipped_at) - julianday(created_at)) * 86400000.0`
        : sql<number>`EXTRACT(EPOCH FROM (shipped_at - created_at)) * 1000`;
    return this.shapes.bind('leadTimes', { limit }, (p) =>
      this.db.selectFrom('orders').select(ms.as('ms')).where('shipped_at', 'is not', null).orderBy('shipped_at', 'desc').limit(p.limit),
    );
  }

  // ---- outbox -----------------------------------------------------------------------------------

  insertOutbox(messages: OutboxMessage[], at: Date) {
    const rows = messages.map((m) => ({ id: m.id, subject: m.subject, payload: m.payload, headers: JSON.stringify(m.headers) }));
    return this.shapes.bind('insertOutbox', { rows, at: dbTime(at) }, (p) =>
      this.db
        .insertInto('outbox')
        .values(p.rows.map((r) => ({ id: r.id, subject: r.subject, payload: r.payload, headers: r.headers, created_at: p.at, attempts: 0 }))),
    );
  }

  markPublished(ids: string[], at: Date) {
    return this.shapes.bind('markPublished', { ids, at: dbTime(at) }, (p) =>
      this.db.updateTable('outbox').set({ published_at: p.at, claimed_by: null, claimed_until: null }).where('id', 'in', p.ids),
    );
  }

  recordOutboxFailure(id: string, error: string) {
    return this.shapes.bind('recordOutboxFailure', { id, error: error.slice(0, 500) }, (p) =>
      this.db
        .updateTable('outbox')
        .set((eb) => ({ attempts: eb('attempts', '+', 1), last_error: p.error }))
        .where('id', '=', p.id),
    );
  }

  /**
   * One statement leases the rows: UPDATE … WHERE id IN (the oldest free ones) RETURNING. On
   * PostgreSQL the inner SELECT locks them FOR UPDATE SKIP LOCKED, so a second relay's claim skips
   * rows the first is leasing rather than waiting for it; SQLite has one writer at a time anyway.
   */
  claimUnpublished(owner: string, now: Date, until: Date, olderThan: Date, limit: number) {
    const args = { owner, now: dbTime(now), until: dbTime(until), olderThan: dbTime(olderThan), limit };
    return this.shapes.bind('claimUnpublished', args, (p) => {
      let free = this.db
        .selectFrom('outbox')
        .select('id')
        .where('published_at', 'is', null)
        .where('created_at', '<', p.olderThan)
        // A relay re-takes its own leases at once (say after a failed publish stopped its batch).
        .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<=', p.now), eb('claimed_by', '=', p.owner)]))
        .orderBy('created_at')
        .limit(p.limit);
      if (this.dialect === 'postgresql') free = free.forUpdate().skipLocked();
      return this.db
        .updateTable('outbox')
        .set({ claimed_by: p.owner, claimed_until: p.until })
        .where('id', 'in', free)
        .returning(['id', 'subject', 'payload', 'headers', 'created_at']);
    });
  }

  outboxStats() {
    return this.shapes.bind('outboxStats', {}, () =>
      this.db
        .selectFrom('outbox')
        .select((eb) => [eb.fn.countAll().as('n'), eb.fn.min('created_at').as('oldest')])
        .where('published_at', 'is', null),
    );
  }

  // ---- inbox and activity -----------------------------------------------------------------------

  recordInbox(consumer: string, messageId: string, at: Date) {
    return this.shapes.bind('recordInbox', { consumer, messageId, at: dbTime(at) }, (p) =>
      this.db
        .insertInto('processed_messages')
        .values({ consumer: p.consumer, message_id: p.messageId, processed_at: p.at })
        .onConflict((oc) => oc.doNothing()),
    );
  }

  recordActivity(a: NewActivity) {
    const args = {
      consumer: a.consumer,
      subject: a.subject,
      eventId: a.eventId,
      eventType: a.eventType,
      orderId: a.orderId,
      cid: a.correlationId,
      summary: a.summary,
      payload: a.payload,
      occurred: dbTime(a.occurredAt),
      received: dbTime(a.receivedAt),
    };
    return this.shapes.bind('recordActivity', args, (p) =>
      this.db
        .insertInto('nats_activities')
        .values({
          consumer: p.consumer,
          subject: p.subject,
          event_id: p.eventId,
          event_type: p.eventType,
          order_id: p.orderId,
          correlation_id: p.cid,
          summary: p.summary,
          payload: p.payload,
          occurred_at: p.occurred,
          received_at: p.received,
        })
        .onConflict((oc) => oc.doNothing()),
    );
  }

  activityFor(orderId: string) {
    return this.shapes.bind('activityFor', { orderId }, (p) =>
      this.db.selectFrom('nats_activities').selectAll().where('order_id', '=', p.orderId).orderBy('occurred_at').orderBy('id'),
    );
  }

  isActivityRecorded(consumer: string, eventId: string) {
    return this.shapes.bind('isActivityRecorded', { consumer, eventId }, (p) =>
      this.db.selectFrom('nats_activities').select(sql<number>`1`.as('one')).where('consumer', '=', p.consumer).where('event_id', '=', p.eventId),
    );
  }

  /** Orders whose `subject` was recorded under more than one event id. */
  shippedTwice(subject: string) {
    return this.shapes.bind('shippedTwice', { subject }, (p) => {
      const twice = this.db
        .selectFrom('nats_activities')
        .select('order_id')
        .where('subject', '=', p.subject)
        .where('order_id', 'is not', null)
        .groupBy('order_id')
        .having((eb) => eb.fn.count('event_id').distinct(), '>', 1)
        .as('t');
      return this.db.selectFrom(twice).select((eb) => eb.fn.countAll().as('n'));
    });
  }

  /** (consumer, order, subject) recorded under more than one event id: one transition published twice. */
  duplicateActivity() {
    return this.shapes.bind('duplicateActivity', {}, () => {
      const dup = this.db
        .selectFrom('nats_activities')
        .select(['consumer', 'order_id', 'subject'])
        .where('order_id', 'is not', null)
        .groupBy(['consumer', 'order_id', 'subject'])
        .having((eb) => eb.fn.count('event_id').distinct(), '>', 1)
        .as('t');
      return this.db.selectFrom(dup).select((eb) => eb.fn.countAll().as('n'));
    });
  }

  ping() {
    return sql<{ one: number }>`SELECT 1 AS one`.compile(this.db);
  }
}

/** The rows a compiled query gives back. */
export type RowOf<Q> = Q extends CompiledQuery<infer R> ? R : never;
