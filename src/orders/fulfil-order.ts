import type { Logger } from 'pino';
import { type Causation, createEvent, MetricEvents, OrderEvents } from '../events/contracts.js';
import { eventMessage, type OutboxMessage } from '../outbox/outbox.js';
import { IllegalTransitionError, OrderNotFoundError } from './errors.js';
import type { Order } from './order.js';
import type { EventPublisher, OutboxPublisher, Storage } from './ports.js';

export interface FulfilDeps {
  storage: Storage;
  /** Publishes committed outbox rows (orders.shipped) on the default connection. */
  outbox: OutboxPublisher;
  /** Analytics connection: metrics.orders. */
  metrics: EventPublisher;
  log: Logger;
}

export const FULFILMENT_CONSUMER = 'fulfillment';

export type FulfilResult = { kind: 'shipped'; order: Order } | { kind: 'skipped'; reason: string } | { kind: 'duplicate' };

/**
 * The PoC's FulfillOrderJob: mark the order shipped and publish orders.shipped (default
 * connection) and metrics.orders (analytics connection).
 * The status change, the orders.shipped outbox row and the inbox row for this job commit in one
 * transaction: a redelivered job finds its inbox row and does nothing, and the state machine
 * refuses to ship an order twice even under a different job id. The order is not read first: the
 * transition returns it (its reference goes into orders.shipped, built inside the unit), so a job
 * costs one unit of work and no read of its own (a read is a transaction too, and after another
 * process's commit SQLite reads its pages afresh).
 */
export async function fulfilOrder(deps: FulfilDeps, orderId: string, jobId: string, cause: Causation): Promise<FulfilResult> {
  // Bindings per call rather than a child logger per job: most of these lines are below the level.
  const at = { order_id: orderId, job_id: jobId, correlation_id: cause.correlationId };
  const shippedAt = new Date();
  let shipped: { order: Order; messages: OutboxMessage[]; eventId: string } | null;
  try {
    // The inbox row, the status change and orders.shipped: one transaction.
    shipped = await deps.storage.run(async (tx) => {
      if (!(await tx.inbox.record(FULFILMENT_CONSUMER, jobId, shippedAt))) return null;
      const order = await tx.orders.transition(orderId, 'shipped', { shippedAt, nextAttemptAt: null }, shippedAt);
      const event = createEvent(OrderEvents.shipped, { order_id: order.id, reference: order.reference, shipped_at: shippedAt.toISOString() }, cause, shippedAt);
      const messages = [eventMessage(event)];
      await tx.outbox.add(messages, shippedAt);
      return { order, messages, eventId: event.event_id };
    });
  } catch (err) {
    if (!(err instanceof IllegalTransitionError || err instanceof OrderNotFoundError)) throw err;
    const reason = err instanceof IllegalTransitionError ? `order is ${err.from}` : 'order not found';
    deps.log.warn({ ...at, reason }, 'not shipping');
    return { kind: 'skipped', reason };
  }
  if (!shipped) {
    deps.log.info(at, 'job already processed; nothing to do');
    return { kind: 'duplicate' };
  }
  const { order, messages, eventId } = shipped;
  await deps.outbox.publish(messages);
  const metric = createEvent(
    MetricEvents.orders,
    {
      event: 'order.shipped',
      order_id: order.id,
      amount_cents: order.amountCents,
      lead_time_ms: Math.max(0, shippedAt.getTime() - order.createdAt.getTime()),
      at: shippedAt.toISOString(),
    },
    { correlationId: cause.correlationId, causationId: eventId },
  );
  // Metrics are analytics, not state: published after the commit, and a lost one is not re-driven.
  await deps.metrics.publish(metric).catch((err: Error) => deps.log.warn({ ...at, err: err.message }, 'could not publish metrics.orders'));
  deps.log.info({ ...at, event_id: eventId, reference: order.reference }, 'order shipped');
  return { kind: 'shipped', order };
}
