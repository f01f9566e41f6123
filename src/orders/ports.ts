import type { Causation, Envelope, OrderStatus, PaymentReply, PaymentRequest } from '../events/contracts.js';
import type { OutboxMessage } from '../outbox/outbox.js';
import type { Activity, NewActivity, NewOrder, Order, Page, TransitionData } from './order.js';

/**
 * What the order domain needs from the outside world. The NATS implementations live in
 * src/nats and src/outbox, the storage ones in src/storage; the domain never imports them.
 */
export interface EventPublisher {
  /** Resolves once the event is stored (JetStream ack) or delivered to the connection. */
  publish(event: Envelope): Promise<void>;
}

export type PaymentOutcome = { kind: 'reply'; reply: PaymentReply } | { kind: 'unavailable'; error: string };

export interface PaymentGateway {
  validate(request: PaymentRequest, cause: Causation): Promise<PaymentOutcome>;
}

/** Publishes outbox messages that have just been committed (the fast path; a sweep catches the rest). */
export interface OutboxPublisher {
  /** Never throws; `after`: publish only once that has settled (an earlier event of the same order). */
  publish(messages: OutboxMessage[], opts?: { after?: Promise<unknown> }): Promise<boolean>;
}

// ---- storage ------------------------------------------------------------------------------------
// Async, no SQL and no driver types: src/storage's adapters (SQLite, PostgreSQL) implement them,
// and one contract test suite (test/storage) holds each adapter to the same behaviour.

export interface OrderStore {
  /** Stores a new order (status `created`). DuplicateKeyError when its reference is taken. */
  insert(order: NewOrder): Promise<Order>;
  find(id: string): Promise<Order | null>;
  /**
   * Moves the order to `to` only if its current status allows it, as one conditional update, so
   * two racing moves cannot both win. IllegalTransitionError when it may not move, OrderNotFoundError.
   */
  transition(id: string, to: OrderStatus, data: TransitionData, at: Date): Promise<Order>;
  /**
   * Takes an order for re-driving until `until`, if it is still in `status` and due
   * (next_attempt_at unset or ≤ `now`, or with `backingOffAfter` later than that: a retry timer,
   * not another reconciler's claim). True for the one caller that got it.
   */
  claim(id: string, status: OrderStatus, now: Date, until: Date, backingOffAfter?: Date): Promise<boolean>;
  /**
   * Takes up to `limit` of the orders awaiting payment (those StorageReads.awaitingPayment lists,
   * oldest first) for re-driving until `until`, with the same rule as `claim`, in one statement:
   * returns the ones this caller got. Two callers at once get different orders, never the same one.
   */
  claimAwaitingPayment(opts: { now: Date; stuckBefore: Date; until: Date; limit: number; backingOffAfter?: Date | undefined }): Promise<Order[]>;
}

export interface OutboxRow extends OutboxMessage {
  createdAt: Date;
}

export interface OutboxStore {
  /** Inside the caller's unit: the messages commit with its state change or not at all. */
  add(messages: OutboxMessage[], at: Date): Promise<void>;
  markPublished(ids: string[], at: Date): Promise<void>;
  recordFailure(id: string, error: string): Promise<void>;
  /**
   * Leases the oldest unpublished rows created before `olderThan` to `owner` until `until`,
   * skipping rows another owner holds a live lease on: two relays never get the same row at once.
   * Rows `owner` leased before are its own again at once. Oldest first.
   */
  claimUnpublished(opts: { owner: string; now: Date; until: Date; olderThan: Date; limit: number }): Promise<OutboxRow[]>;
}

export interface InboxStore {
  /** Records that `consumer` processed `messageId`; false if it had already (nothing written). */
  record(consumer: string, messageId: string, at: Date): Promise<boolean>;
}

export interface ActivityStore {
  /** Records an event once per (consumer, event id); false if that row existed. */
  record(row: NewActivity): Promise<boolean>;
}

/** What a unit of work may touch: everything in it commits together or not at all. */
export interface Tx {
  orders: OrderStore;
  outbox: OutboxStore;
  inbox: InboxStore;
  activity: ActivityStore;
}

export interface UnitOfWork {
  /**
   * Runs `work` in a transaction and resolves with its result once committed; if it throws,
   * nothing it wrote is kept (and other units are not affected).
   * `work` must only await `tx`'s methods: anything else (NATS, timers) belongs before or after.
   * It may run more than once (PostgreSQL runs it again after a deadlock, or when another unit
   * of its batch failed), so it must be database work only; and a unit that catches a failed
   * statement's error and carries on is refused rather than told its writes committed.
   * `within`: work nobody waits on (activity rows, published marks) may wait that many ms to
   * share a commit with other work.
   */
  run<T>(work: (tx: Tx) => Promise<T>, opts?: { within?: number }): Promise<T>;
}

export interface StatusCounts {
  byStatus: Partial<Record<OrderStatus, number>>;
  total: number;
}

/** Counts that `orderflow check` turns into the invariant report (see invariants.ts). */
export interface InvariantCounts extends StatusCounts {
  /** Orders with `orders.shipped` recorded under more than one event id. */
  shippedTwice: number;
  /** (consumer, order, subject) recorded under more than one event id. */
  duplicateActivity: number;
  unpublishedOutbox: number;
}

/** Everything pages, the dashboard, the reconciler's scans and operators' commands read. */
export interface StorageReads {
  order(id: string): Promise<Order | null>;
  /** Newest first. */
  orderPage(page: number, perPage: number): Promise<Page<Order>>;
  /** Every order's id and status (`orderflow projections rebuild`). */
  orderStatuses(): Promise<{ id: string; status: string }[]>;
  /** The order's recorded events, oldest first. */
  activityFor(orderId: string): Promise<Activity[]>;
  isActivityRecorded(consumer: string, eventId: string): Promise<boolean>;
  /** `payment_pending` orders due, and `created` ones older than `stuckBefore` (a crash before asking): oldest first. */
  awaitingPayment(opts: { now: Date; stuckBefore: Date; limit: number; backingOffAfter?: Date | undefined }): Promise<Order[]>;
  /** `paid` before `paidBefore`, not shipped, due: oldest payment first. */
  unshipped(opts: { now: Date; paidBefore: Date; limit: number }): Promise<Order[]>;
  statusCounts(): Promise<StatusCounts>;
  invariantCounts(): Promise<InvariantCounts>;
  outboxStats(): Promise<{ unpublished: number; oldestUnpublishedAt: Date | null }>;
  /** Orders created and shipped per `bucketS` seconds since `since` (bucket = epoch seconds / bucketS). */
  throughput(since: Date, bucketS: number): Promise<{ created: Bucket[]; shipped: Bucket[] }>;
  /** created → shipped of the last `limit` shipped orders, in ms. */
  recentLeadTimes(limit: number): Promise<number[]>;
  /** Resolves when the database answers (for /ready); rejects with the reason. */
  ping(): Promise<void>;
}

export interface Bucket {
  bucket: number;
  n: number;
}

/** A process's storage: the flows' unit of work, the reads, and close (waits for queued work). */
export interface Storage extends UnitOfWork, StorageReads {
  /** `sqlite` or `postgresql`: for logs and the few places that say which one is in use. */
  readonly kind: string;
  close(): Promise<void>;
}
