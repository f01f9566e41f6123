import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrderEvents } from '../src/events/contracts.js';
import { placeOrder } from '../src/orders/place-order.js';
import { orderDeps, type Runtime } from '../src/runtime/context.js';
import { startActivityWorker } from '../src/workers/activity.js';
import { startFulfillmentWorker } from '../src/workers/fulfillment.js';
import { startPaymentResponder } from '../src/workers/payments.js';
import { startStack, waitFor, type TestStack } from './helpers/stack.js';

let stack: TestStack;
let web: Runtime;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  stack = await startStack();
  web = await stack.runtime('web');
  const workers = await stack.runtime('workers');
  stops.push((await startPaymentResponder(workers)).stop);
  stops.push(startActivityWorker(workers).stop);
  stops.push(startFulfillmentWorker(workers).stop);
});
afterAll(async () => {
  for (const s of stops) await s();
  await stack.stop();
});

const deps = () => orderDeps(web);

describe('the order chain: created → paid → shipped', () => {
  it('ships an approved order and records every event', async () => {
    const order = await placeOrder(deps(), { customerEmail: 'a@example.com', amountCents: 1250, correlationId: 'corr-1' });
    expect(order.status).toBe('paid');
    const shipped = await waitFor(async () => {
      const o = await web.storage.order(order.id);
      return o?.status === 'shipped' ? o : null;
    }, 5000, 'order shipped');
    expect(shipped.shippedAt).toBeInstanceOf(Date);
    const acts = await waitFor(async () => {
      const a = await web.storage.activityFor(order.id);
      return a.length >= 3 ? a : null;
    }, 5000, 'three activity rows');
    expect(acts.map((a) => a.subject)).toEqual([OrderEvents.created.subject, OrderEvents.paid.subject, OrderEvents.shipped.subject]);
  });

  it('declines an order of 10,000.00 or more', async () => {
    const order = await placeOrder(deps(), { customerEmail: 'b@example.com', amountCents: 1_000_000, correlationId: 'corr-2' });
    expect(order.status).toBe('payment_declined');
    expect(JSON.parse(order.paymentResponse!)).toMatchObject({ approved: false, reason: expect.stringContaining('10,000.00') });
  });
});

describe('invariants', () => {
  it('count every accepted order as final, none shipped twice, no duplicate activity', async () => {
    const { checkInvariants } = await import('../src/orders/invariants.js');
    const report = await waitFor(async () => {
      const r = await checkInvariants(web.storage);
      return r.final === r.accepted && r.unpublishedOutbox === 0 ? r : null;
    });
    expect(report).toMatchObject({ accepted: 2, final: 2, shippedTwice: 0, duplicateActivity: 0, byStatus: { shipped: 1, payment_declined: 1 } });
  });
});
