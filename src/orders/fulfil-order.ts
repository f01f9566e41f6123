import type { Logger } from 'pino';
import { createEvent, MetricEvents, OrderEvents, type Causation } from '../events/contracts.js';
import { eventMessage } from '../outbox/outbox.js';
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
 * refuses to ship an order twice even under a different job id.
 */
export async function fulfilOrder(deps: FulfilDeps, orderId: string, jobId: string, cause: Causation): Promise<FulfilResult> {
  const log = deps.log.child({ order_id: orderId, job_id: jobId, correlation_id: cause.correlationId });
  const current = await deps.storage.order(orderId);
  if (!current) {
    log.warn({ reason: 'order not found' }, 'not shipping');
    return { kind: 'skipped', reason: 'order not found' };
  }
  const shippedAt = new Date();
  const shipped = createEvent(OrderEvents.shipped, { order_id: current.id, reference: current.reference, shipped_at: shippedAt.toISOString() }, cause);
  const messages = [eventMessage(shipped)];
  let order: Order;
  try {
    // The inbox row, the status change and orders.shipped: one transaction.
    const done = await deps.storage.run(async (tx) => {
      if (!(await tx.inbox.record(FULFILMENT_CONSUMER, jobId, shippedAt))) return null;
      const shippedOrder = await tx.orders.transition(orderId, 'shipped', { shippedAt, nextAttemptAt: null }, shippedAt);
      await tx.outbox.add(messages, shippedAt);
      return shippedOrder;
    });
    if (!done) {
      log.info('job already processed; nothing to do');
      return { kind: 'duplicate' };
    }
    order = done;
  } catch (err) {
    if (!(err instanceof IllegalTransitionError || err instanceof OrderNotFoundError)) throw err;
    const reason = err instanceof IllegalTransitionError ? `order is ${err.from}` : 'order not found';
    log.warn({ reason }, 'not shipping');
    return { kind: 'skipped', reason };
  }
  const shippedEventId = shipped.event_id;
  await deps.outbox.publish(messages);
  const metric = createEvent(
    MetricEvents.orders,
    { event: 'order.shipped', order_id: order.id, amount_cents: order.amountCents, lead_time_ms: Math.max(0, shippedAt.getTime() - order.createdAt.getTime()), at: shippedAt.toISOString() },
    { correlationId: cause.correlationId, causationId: shippedEventId },
  );
  // Metrics are analytics, not state: published after the commit, and a lost one is not re-driven.
  await deps.metrics.publish(metric).catch((err: Error) => log.warn({ err: err.message }, 'could not publish metrics.orders'));
  log.info({ event_id: shippedEventId, reference: order.reference }, 'order shipped');
  return { kind: 'shipped', order };
}
