import type { Logger } from 'pino';
import type { Db } from '../db/client.js';
import { createEvent, MetricEvents, OrderEvents, type Causation } from '../events/contracts.js';
import { appendOutbox, eventMessage, processOnce } from '../outbox/outbox.js';
import type { EventPublisher, OutboxPublisher } from './ports.js';
import { OrderRepository, type Order } from './repository.js';
import { IllegalTransitionError } from './state.js';

export interface FulfilDeps {
  db: Db;
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
  const repo = new OrderRepository(deps.db);
  const outcome = await processOnce(deps.db, FULFILMENT_CONSUMER, jobId, async (tx) => {
    let order: Order;
    try {
      order = await repo.transition(orderId, 'shipped', { shippedAt: new Date(), nextAttemptAt: null }, tx);
    } catch (err) {
      if (err instanceof IllegalTransitionError) return { kind: 'skipped' as const, reason: `order is ${err.from}` };
      if (err instanceof Error && /not found/.test(err.message)) return { kind: 'skipped' as const, reason: 'order not found' };
      throw err;
    }
    const shipped = createEvent(OrderEvents.shipped, { order_id: order.id, reference: order.reference, shipped_at: (order.shippedAt ?? new Date()).toISOString() }, cause);
    return { kind: 'shipped' as const, order, shippedEventId: shipped.event_id, messages: await appendOutbox(tx, [eventMessage(shipped)]) };
  });

  if (!outcome.fresh) {
    log.info('job already processed; nothing to do');
    return { kind: 'duplicate' };
  }
  const result = outcome.result;
  if (result.kind === 'skipped') {
    log.warn({ reason: result.reason }, 'not shipping');
    return result;
  }
  const { order, shippedEventId } = result;
  await deps.outbox.publish(result.messages);
  const shippedAt = order.shippedAt ?? new Date();
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
