import type { Logger } from 'pino';
import { type Causation, createEvent, OrderEvents } from '../events/contracts.js';
import { createJob, Jobs } from '../events/jobs.js';
import { eventMessage, jobMessage } from '../outbox/outbox.js';
import { retryDelay } from '../retry/backoff.js';
import { DuplicateKeyError } from './errors.js';
import { newOrder, type Order } from './order.js';
import type { OutboxPublisher, PaymentGateway, Storage, Tx } from './ports.js';
import { IllegalTransitionError } from './state.js';

export interface PlaceOrderDeps {
  storage: Storage;
  outbox: OutboxPublisher;
  payments: PaymentGateway;
  log: Logger;
  /** Base of the payment retry backoff (PAYMENT_RETRY_BASE_MS). */
  paymentRetryBaseMs: number;
}

export interface PlaceOrderInput {
  customerEmail: string;
  amountCents: number;
  correlationId: string;
}

/** When to ask the payment service again after `attempts` unanswered tries: base × 2^(n-1), at most 60 s (the one retry rule). */
export const nextPaymentAttempt = (attempts: number, baseMs: number, now = Date.now()) =>
  new Date(now + retryDelay({ firstMs: baseMs, maxMs: 60_000 }, attempts));

/**
 * The PoC's OrderController: record the order, publish orders.created, ask payments.validate,
 * then either publish orders.paid and queue fulfilment, or record the decline.
 * Each state change commits together with the events it causes (transactional outbox), so an
 * accepted order is never lost and never half-written, whatever NATS is doing: if the payment
 * service cannot be asked, the order waits in `payment_pending` for the reconciler.
 */
export async function placeOrder(deps: PlaceOrderDeps, input: PlaceOrderInput): Promise<Order> {
  // The order and its orders.created row commit together.
  const { order, messages } = await deps.storage.run(async (tx) => {
    const order = await insertOrder(tx, input);
    const messages = [eventMessage(createdEvent(order))];
    await tx.outbox.add(messages, order.createdAt);
    return { order, messages };
  });
  const createdId = messages[0]!.id;
  deps.log.info({ order_id: order.id, reference: order.reference, correlation_id: order.correlationId, event_id: createdId }, 'order created');
  // orders.created goes out while the payment service is asked; what the answer causes is
  // published only after it, so the stream keeps created before paid.
  const published = deps.outbox.publish(messages);
  return settlePayment(deps, order, { correlationId: order.correlationId, causationId: createdId }, published);
}

/** A reference collision (1 in ~10^12) is retried with a new one rather than shown to the customer. */
async function insertOrder(tx: Tx, input: PlaceOrderInput): Promise<Order> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await tx.orders.insert(newOrder(input));
    } catch (err) {
      if (attempt < 3 && err instanceof DuplicateKeyError) continue;
      throw err;
    }
  }
}

const createdEvent = (o: Order) =>
  createEvent(
    OrderEvents.created,
    { order_id: o.id, reference: o.reference, customer_email: o.customerEmail, amount_cents: o.amountCents, currency: o.currency },
    { correlationId: o.correlationId },
  );

/**
 * Asks the payment service about an order that is `created` or `payment_pending` and applies the
 * answer. Used by the web request and, for orders left waiting, by the reconciler.
 */
export async function settlePayment(deps: PlaceOrderDeps, order: Order, cause: Causation, before: Promise<unknown> = Promise.resolve()): Promise<Order> {
  const log = deps.log.child({ order_id: order.id, reference: order.reference, correlation_id: cause.correlationId });
  const outcome = await deps.payments.validate(
    { order_id: order.id, reference: order.reference, amount_cents: order.amountCents, currency: order.currency },
    cause,
  );
  if (outcome.kind === 'unavailable') await before;

  try {
    if (outcome.kind === 'unavailable') {
      const attempts = order.paymentAttempts + 1;
      log.warn({ error: outcome.error, attempts }, 'payment service unavailable; order kept as payment_pending');
      const now = new Date();
      return await deps.storage.run((tx) =>
        tx.orders.transition(
          order.id,
          'payment_pending',
          { paymentError: outcome.error, incrementAttempts: true, nextAttemptAt: nextPaymentAttempt(attempts, deps.paymentRetryBaseMs, now.getTime()) },
          now,
        ),
      );
    }

    const { reply } = outcome;
    const paymentResponse = JSON.stringify(reply);
    const to = reply.approved ? 'paid' : 'payment_declined';
    const messages = reply.approved
      ? [
          eventMessage(
            createEvent(
              OrderEvents.paid,
              { order_id: order.id, reference: order.reference, amount_cents: order.amountCents, transaction_id: reply.transaction_id ?? '' },
              cause,
            ),
          ),
          jobMessage(Jobs.fulfillOrder, createJob(Jobs.fulfillOrder, { order_id: order.id }, { correlationId: cause.correlationId })),
        ]
      : [
          eventMessage(
            createEvent(
              OrderEvents.declined,
              { order_id: order.id, reference: order.reference, amount_cents: order.amountCents, reason: reply.reason ?? 'declined' },
              cause,
            ),
          ),
        ];
    const now = new Date();
    const updated = await deps.storage.run(async (tx) => {
      const o = await tx.orders.transition(
        order.id,
        to,
        { paymentResponse, paymentError: null, incrementAttempts: true, nextAttemptAt: null, ...(reply.approved ? { paidAt: now } : {}) },
        now,
      );
      await tx.outbox.add(messages, now);
      return o;
    });
    log.info(
      { approved: reply.approved, transaction_id: reply.transaction_id, reason: reply.reason, outbox_ids: messages.map((m) => m.id) },
      reply.approved ? 'payment approved; fulfilment queued' : 'payment declined',
    );
    // The answer does not wait for these publishes: the rows are committed (durable), so the
    // relay, or its sweep after a crash, delivers them whatever happens to this request.
    void deps.outbox.publish(messages, { after: before });
    return updated;
  } catch (err) {
    // Someone else (the reconciler, a second web request) settled it first: theirs stands.
    if (err instanceof IllegalTransitionError) {
      log.info({ status: err.from }, 'order already settled elsewhere');
      return (await deps.storage.order(order.id)) ?? order;
    }
    throw err;
  }
}
