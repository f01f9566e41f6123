import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaymentsValidate } from '../../src/events/contracts.js';
import { NatsPaymentGateway } from '../../src/nats/payments-client.js';
import { paymentRepliesRejected } from '../../src/observability/metrics.js';
import { placeOrder } from '../../src/orders/place-order.js';
import { orderDeps, type Runtime } from '../../src/runtime/context.js';
import { startStack, type TestStack } from '../helpers/stack.js';

/**
 * Replies are checked, not trusted: a reply must name the order and amount the web app asked
 * about. The responder here is the test's own (all-powerful) client standing in for a payment
 * service that is wrong or compromised; the web app runs as its real identity.
 */
let stack: TestStack;
let web: Runtime;
let responder: NatsConnection;
let answer: (asked: { order_id: string; amount_cents: number }) => object;

beforeAll(async () => {
  stack = await startStack();
  web = await stack.runtime('web');
  responder = await stack.connect();
  responder.subscribe(PaymentsValidate.subject, {
    callback: (_err, m) => m.respond(new TextEncoder().encode(JSON.stringify(answer(m.json())))),
  });
  await responder.flush();
});
afterAll(() => stack.stop());

const rejected = async (reason: string) => (await paymentRepliesRejected.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;

describe('payment replies', () => {
  it('a reply that answers another order is refused and counted', async () => {
    answer = () => ({ approved: true, transaction_id: 'txn_forged', order_id: 'someone-else', amount_cents: 100 });
    const gateway = new NatsPaymentGateway(web.nats.default, 2000, web.log);
    const before = await rejected('order_mismatch');
    const outcome = await gateway.validate({ order_id: 'o-1', amount_cents: 100 }, { correlationId: 'c' });
    expect(outcome).toMatchObject({ kind: 'unavailable', error: expect.stringContaining('order mismatch') });
    expect(await rejected('order_mismatch')).toBe(before + 1);
  });

  it('so does one for the right order but another amount', async () => {
    answer = (asked) => ({ approved: true, transaction_id: 'txn_forged', order_id: asked.order_id, amount_cents: 1 });
    const gateway = new NatsPaymentGateway(web.nats.default, 2000, web.log);
    const before = await rejected('amount_mismatch');
    expect(await gateway.validate({ order_id: 'o-2', amount_cents: 5_000_000 }, { correlationId: 'c' })).toMatchObject({ kind: 'unavailable' });
    expect(await rejected('amount_mismatch')).toBe(before + 1);
  });

  it('an order given such a reply is not paid: it waits as payment_pending for a real answer', async () => {
    answer = () => ({ approved: true, transaction_id: 'txn_forged', order_id: 'someone-else', amount_cents: 5_000_000 });
    const order = await placeOrder(orderDeps(web), { customerEmail: 'x@example.com', amountCents: 5_000_000, correlationId: 'c-forged' });
    expect(order.status).toBe('payment_pending');
    expect(order.paidAt).toBeNull();
  });

  it('a reply that matches is accepted', async () => {
    answer = (asked) => ({ approved: true, transaction_id: 'txn_ok', order_id: asked.order_id, amount_cents: asked.amount_cents });
    const gateway = new NatsPaymentGateway(web.nats.default, 2000, web.log);
    expect(await gateway.validate({ order_id: 'o-3', amount_cents: 1250 }, { correlationId: 'c' })).toMatchObject({
      kind: 'reply',
      reply: { approved: true, order_id: 'o-3' },
    });
  });
});
