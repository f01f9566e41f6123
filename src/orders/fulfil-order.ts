import type { Logger } from 'pino';
import { createEvent, MetricEvents, OrderEvents, type Causation } from '../events/contracts.js';
import type { EventPublisher } from './ports.js';
import type { Order, OrderRepository } from './repository.js';
import { IllegalTransitionError } from './state.js';

export interface FulfilDeps {
  orders: OrderRepository;
  /** Default connection: orders.shipped goes to the ORDERS stream. */
  events: EventPublisher;
  /** Analytics connection: metrics.orders. */
  metrics: EventPublisher;
  log: Logger;
}

export type FulfilResult = { kind: 'shipped'; order: Order } | { kind: 'skipped'; reason: string };

/**
 * The PoC's FulfillOrderJob: mark the order shipped, publish orders.shipped on the default
 * connection and metrics.orders on the analytics connection. An order that is already shipped,
 * or not paid, is skipped: a redelivered job must not ship twice.
 */
export async function fulfilOrder(deps: FulfilDeps, orderId: string, cause: Causation): Promise<FulfilResult> {
  const log = deps.log.child({ order_id: orderId, correlation_id: cause.correlationId });
  let order: Order;
  try {
    order = await deps.orders.transition(orderId, 'shipped', { shippedAt: new Date() });
  } catch (err) {
    if (err instanceof IllegalTransitionError) {
      log.warn({ status: err.from }, 'not shipping: order is not in a shippable state');
      return { kind: 'skipped', reason: `order is ${err.from}` };
    }
    if (err instanceof Error && /not found/.test(err.message)) {
      log.warn('not shipping: order not found');
      return { kind: 'skipped', reason: 'order not found' };
    }
    throw err;
  }
  const shippedAt = order.shippedAt ?? new Date();
  const shipped = createEvent(OrderEvents.shipped, { order_id: order.id, reference: order.reference, shipped_at: shippedAt.toISOString() }, cause);
  await deps.events.publish(shipped);
  const metric = createEvent(
    MetricEvents.orders,
    {
      event: 'order.shipped',
      order_id: order.id,
      amount_cents: order.amountCents,
      lead_time_ms: Math.max(0, shippedAt.getTime() - order.createdAt.getTime()),
      at: shippedAt.toISOString(),
    },
    { correlationId: cause.correlationId, causationId: shipped.event_id },
  );
  await deps.metrics.publish(metric);
  log.info({ event_id: shipped.event_id, reference: order.reference }, 'order shipped');
  return { kind: 'shipped', order };
}
