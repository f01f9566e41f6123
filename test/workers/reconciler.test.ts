import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, OrderEvents } from '../../src/events/contracts.js';
import { placeOrder } from '../../src/orders/place-order.js';
import { eventMessage } from '../../src/outbox/outbox.js';
import { testOrders } from '../helpers/db.js';
import { orderDeps, type Runtime } from '../../src/runtime/context.js';
import { startFulfillmentWorker } from '../../src/workers/fulfillment.js';
import { startPaymentResponder } from '../../src/workers/payments.js';
import { startReconciler } from '../../src/workers/reconciler.js';
import { startStack, waitFor, type TestStack } from '../helpers/stack.js';
import { registry } from '../../src/observability/metrics.js';

let stack: TestStack;
let web: Runtime;
let workers: Runtime;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  stack = await startStack({ PAYMENT_TIMEOUT_MS: '300', PAYMENT_RETRY_BASE_MS: '100', STUCK_AFTER_MS: '400' });
  web = await stack.runtime('web');
  workers = await stack.runtime('workers');
  stops.push(startFulfillmentWorker(workers).stop);
  stops.push(startReconciler(await stack.runtime('reconciler'), { intervalMs: 100 }).stop);
});
afterAll(async () => {
  for (const s of stops.reverse()) await s();
  await stack.stop();
});

const status = (id: string) => web.storage.order(id);

describe('reconciler', () => {
  it('keeps an order payment_pending while no responder runs, retrying with backoff, and ships it once one starts', async () => {
    const order = await placeOrder(orderDeps(web), { customerEmail: 'p@example.com', amountCents: 700, correlationId: 'c-pending' });
    expect(order).toMatchObject({ status: 'payment_pending', paymentAttempts: 1, paymentError: expect.stringContaining('no payment service') });
    await waitFor(async () => ((await status(order.id))!.paymentAttempts >= 3 ? true : null), 5000, 'retries');

    stops.push((await startPaymentResponder(workers)).stop);
    const shipped = await waitFor(async () => {
      const o = await status(order.id);
      return o?.status === 'shipped' ? o : null;
    }, 8000, 'shipped after the responder came back');
    expect(shipped.paymentError).toBeNull();
    // It counts what it re-drove (this process's own registry).
    expect(await registry.getSingleMetricAsString('orderflow_reconciled_total')).toMatch(/action="payment_retried"\} [1-9]/);
  });

  it('re-queues fulfilment for an order that was paid but whose job was lost', async () => {
    const repo = testOrders(web.storage);
    const o = await repo.create({ customerEmail: 'l@example.com', amountCents: 100, correlationId: 'c-lost' });
    await repo.transition(o.id, 'paid', { paidAt: new Date(Date.now() - 1000) });
    await waitFor(async () => ((await status(o.id))?.status === 'shipped' ? true : null), 5000, 'shipped by the re-queued job');
  });

  it('publishes outbox rows that nobody published (a crash between commit and publish)', async () => {
    const e = createEvent(OrderEvents.created, { order_id: 'orphan-1', reference: 'ORD-CCCCCCCC', customer_email: 'o@example.com', amount_cents: 1, currency: 'USD' }, { correlationId: 'c-orphan' });
    await web.storage.run((tx) => tx.outbox.add([eventMessage(e)], new Date()));
    const row = await waitFor(async () => {
      const r = await stack.db().selectFrom('outbox').select('published_at').where('id', '=', e.event_id).executeTakeFirst();
      return r?.published_at ? r : null;
    }, 5000, 'outbox row published');
    expect(row.published_at).toEqual(expect.any(String));
    const jsm = await web.nats.default.jetstreamManager();
    const stored = await jsm.streams.getMessage('ORDERS', { last_by_subj: 'orders.created' });
    expect(stored.header.get('Nats-Msg-Id')).toBe(e.event_id);
  });
});
