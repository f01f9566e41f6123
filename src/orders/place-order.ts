import type { Logger } from 'pino';
import { type Causation, createEvent, type Envelope, OrderEvents, type OrderStatus } from '../events/contracts.js';
import { createJob, Jobs } from '../events/jobs.js';
import { eventMessage, jobMessage, type OutboxMessage } from '../outbox/outbox.js';
import { retryDelay } from '../retry/backoff.js';
import { DuplicateKeyError } from './errors.js';
import { type NewOrder, newOrder, type Order, type TransitionData } from './order.js';
import type { OutboxPublisher, PaymentGateway, PaymentOutcome, Storage } from './ports.js';
import { newOrderReference } from './reference.js';
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
 * The PoC's OrderController: take the order, publish orders.created, ask payments.validate, then
 * either publish orders.paid and queue fulfilment, or record the decline.
 *
 * The payment service is asked *before* anything is written, and the order then commits in its
 * settled state together with every event it causes (transactional outbox): one commit per order,
 * durable before the customer is told. Asking first is safe because payments.validate is a
 * question without side effects: if this process dies before the commit, the customer got no
 * answer and nothing was accepted. When the payment service cannot be asked (NATS down, nobody
 * answering), the order commits as `payment_pending` and the reconciler asks again later.
 * Events still go out in the PoC's order: created, then paid (or declined) and the job.
 */
export async function placeOrder(deps: PlaceOrderDeps, input: PlaceOrderInput): Promise<Order> {
  const draft = newOrder(input);
  const created = createdEvent(draft);
  const cause: Causation = { correlationId: draft.correlationId, causationId: created.event_id };
  const outcome = await deps.payments.validate(paymentRequest(draft), cause);
  const now = new Date();
  for (let attempt = 0; ; attempt++) {
    // A reference collision (1 in ~10^12) is retried with a new reference rather than shown to
    // the customer, as a new unit: a failed statement ends a PostgreSQL transaction.
    const o = attempt === 0 ? draft : { ...draft, reference: newOrderReference() };
    const first = eventMessage(attempt === 0 ? created : { ...created, data: { ...created.data, reference: o.reference } });
    const { to, data, messages } = settlement(deps, o, outcome, cause, now);
    try {
      const order = await deps.storage.run(async (tx) => {
        await tx.orders.insert(o);
        await tx.outbox.add([first, ...messages], now);
        return tx.orders.transition(o.id, to, data, now);
      });
      logSettled(deps.log, order, outcome, [first, ...messages]);
      // The answer does not wait for these publishes: the rows are committed (durable), so the
      // relay, or its sweep after a crash, delivers them whatever happens to this request.
      const published = deps.outbox.publish([first]);
      void deps.outbox.publish(messages, { after: published });
      return order;
    } catch (err) {
      if (attempt < 3 && err instanceof DuplicateKeyError) continue;
      throw err;
    }
  }
}

const createdEvent = (o: NewOrder) =>
  createEvent(
    OrderEvents.created,
    { order_id: o.id, reference: o.reference, customer_email: o.customerEmail, amount_cents: o.amountCents, currency: o.currency },
    { correlationId: o.correlationId },
  );

const paymentRequest = (o: NewOrder | Order) => ({ order_id: o.id, reference: o.reference, amount_cents: o.amountCents, currency: o.currency });

/** What a payment outcome does to an order: its next status, what changes, and the events it causes. */
interface Settlement {
  to: OrderStatus;
  data: TransitionData;
  messages: OutboxMessage[];
}

function settlement(
  deps: PlaceOrderDeps,
  order: { id: string; reference: string; amountCents: number; paymentAttempts?: number },
  outcome: PaymentOutcome,
  cause: Causation,
  now: Date,
): Settlement {
  if (outcome.kind === 'unavailable') {
    const attempts = (order.paymentAttempts ?? 0) + 1;
    return {
      to: 'payment_pending',
      data: { paymentError: outcome.error, incrementAttempts: true, nextAttemptAt: nextPaymentAttempt(attempts, deps.paymentRetryBaseMs, now.getTime()) },
      messages: [],
    };
  }
  const { reply } = outcome;
  const data: TransitionData = { paymentResponse: JSON.stringify(reply), paymentError: null, incrementAttempts: true, nextAttemptAt: null };
  if (!reply.approved) {
    const declined: Envelope = createEvent(
      OrderEvents.declined,
      { order_id: order.id, reference: order.reference, amount_cents: order.amountCents, reason: reply.reason ?? 'declined' },
      cause,
    );
    return { to: 'payment_declined', data, messages: [eventMessage(declined)] };
  }
  const paid = createEvent(
    OrderEvents.paid,
    { order_id: order.id, reference: order.reference, amount_cents: order.amountCents, transaction_id: reply.transaction_id ?? '' },
    cause,
  );
  return {
    to: 'paid',
    data: { ...data, paidAt: now },
    messages: [eventMessage(paid), jobMessage(Jobs.fulfillOrder, createJob(Jobs.fulfillOrder, { order_id: order.id }, { correlationId: cause.correlationId }))],
  };
}

function logSettled(log: Logger, order: Order, outcome: PaymentOutcome, messages: OutboxMessage[]): void {
  const l = log.child({ order_id: order.id, reference: order.reference, correlation_id: order.correlationId });
  const outbox_ids = messages.map((m) => m.id);
  if (outcome.kind === 'unavailable') {
    l.warn({ error: outcome.error, attempts: order.paymentAttempts, outbox_ids }, 'payment service unavailable; order kept as payment_pending');
    return;
  }
  const { reply } = outcome;
  l.info(
    { approved: reply.approved, transaction_id: reply.transaction_id, reason: reply.reason, outbox_ids },
    reply.approved ? 'payment approved; fulfilment queued' : 'payment declined',
  );
}

/**
 * Asks the payment service about an order already stored as `created` or `payment_pending` and
 * applies the answer: the reconciler's re-drive of orders left waiting.
 */
export async function settlePayment(deps: PlaceOrderDeps, order: Order, cause: Causation): Promise<Order> {
  const outcome = await deps.payments.validate(paymentRequest(order), cause);
  const now = new Date();
  const { to, data, messages } = settlement(deps, order, outcome, cause, now);
  try {
    const updated = await deps.storage.run(async (tx) => {
      const o = await tx.orders.transition(order.id, to, data, now);
      if (messages.length) await tx.outbox.add(messages, now);
      return o;
    });
    logSettled(deps.log, updated, outcome, messages);
    void deps.outbox.publish(messages);
    return updated;
  } catch (err) {
    // Someone else (the reconciler, a second web request) settled it first: theirs stands.
    if (err instanceof IllegalTransitionError) {
      deps.log.info({ order_id: order.id, correlation_id: cause.correlationId, status: err.from }, 'order already settled elsewhere');
      return (await deps.storage.order(order.id)) ?? order;
    }
    throw err;
  }
}
