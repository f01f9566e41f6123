import type { Logger } from 'pino';
import { createEvent, OrderEvents, type Causation } from '../events/contracts.js';
import { Jobs } from '../events/jobs.js';
import type { EventPublisher, JobDispatcher, PaymentGateway } from './ports.js';
import type { Order, OrderRepository } from './repository.js';

export interface PlaceOrderDeps {
  orders: OrderRepository;
  events: EventPublisher;
  payments: PaymentGateway;
  jobs: JobDispatcher;
  log: Logger;
}

export interface PlaceOrderInput {
  customerEmail: string;
  amountCents: number;
  correlationId: string;
}

/**
 * The PoC's OrderController: record the order, publish orders.created, ask payments.validate,
 * then either publish orders.paid and queue fulfilment, or record the decline.
 * The order is stored first, so whatever fails afterwards it is never lost: it stays visible in
 * `payment_pending` with the error on it.
 */
export async function placeOrder(deps: PlaceOrderDeps, input: PlaceOrderInput): Promise<Order> {
  const order = await deps.orders.create(input);
  const log = deps.log.child({ order_id: order.id, reference: order.reference, correlation_id: order.correlationId });
  const cause: Causation = { correlationId: order.correlationId };

  const created = createEvent(
    OrderEvents.created,
    { order_id: order.id, reference: order.reference, customer_email: order.customerEmail, amount_cents: order.amountCents, currency: order.currency },
    cause,
  );
  try {
    await deps.events.publish(created);
    log.info({ event_id: created.event_id, subject: created.type }, 'order created');
  } catch (err) {
    log.error({ err, event_id: created.event_id }, 'could not publish orders.created');
  }

  return settlePayment(deps, order, { correlationId: order.correlationId, causationId: created.event_id });
}

/** Asks the payment service about an order that is `created` or `payment_pending`, and applies the answer. */
export async function settlePayment(deps: PlaceOrderDeps, order: Order, cause: Causation): Promise<Order> {
  const log = deps.log.child({ order_id: order.id, reference: order.reference, correlation_id: cause.correlationId });
  const outcome = await deps.payments.validate(
    { order_id: order.id, reference: order.reference, amount_cents: order.amountCents, currency: order.currency },
    cause,
  );

  if (outcome.kind === 'unavailable') {
    log.warn({ error: outcome.error }, 'payment service unavailable; order kept as payment_pending');
    return deps.orders.transition(order.id, 'payment_pending', { paymentError: outcome.error, incrementAttempts: true });
  }

  const { reply } = outcome;
  const paymentResponse = JSON.stringify(reply);
  if (!reply.approved) {
    const reason = reply.reason ?? 'declined';
    const declined = await deps.orders.transition(order.id, 'payment_declined', { paymentResponse, paymentError: null, incrementAttempts: true });
    const event = createEvent(OrderEvents.declined, { order_id: order.id, reference: order.reference, amount_cents: order.amountCents, reason }, cause);
    await publishQuietly(deps, event, log);
    log.info({ event_id: event.event_id, reason }, 'payment declined');
    return declined;
  }

  const paid = await deps.orders.transition(order.id, 'paid', { paymentResponse, paymentError: null, paidAt: new Date(), incrementAttempts: true });
  const event = createEvent(
    OrderEvents.paid,
    { order_id: order.id, reference: order.reference, amount_cents: order.amountCents, transaction_id: reply.transaction_id ?? '' },
    cause,
  );
  await publishQuietly(deps, event, log);
  try {
    const jobId = await deps.jobs.dispatch(Jobs.fulfillOrder, { order_id: order.id }, { correlationId: cause.correlationId });
    log.info({ event_id: event.event_id, job_id: jobId, transaction_id: reply.transaction_id }, 'payment approved; fulfilment queued');
  } catch (err) {
    log.error({ err }, 'could not queue fulfilment');
  }
  return paid;
}

async function publishQuietly(deps: PlaceOrderDeps, event: Parameters<EventPublisher['publish']>[0], log: Logger) {
  try {
    await deps.events.publish(event);
  } catch (err) {
    log.error({ err, event_id: event.event_id, subject: event.type }, 'could not publish event');
  }
}
