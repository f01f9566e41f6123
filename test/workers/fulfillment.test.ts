import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricEvents, OrderEvents, parseEvent } from '../../src/events/contracts.js';
import { createJob, Jobs, jobSubject } from '../../src/events/jobs.js';
import { readStream } from '../../src/nats/stream-reader.js';
import { JetStreamJobQueue } from '../../src/jobs/queue.js';
import { startNatsServer, type NatsServerProcess } from '../../src/nats/server-process.js';
import { n, testOrders } from '../helpers/db.js';
import type { Runtime } from '../../src/runtime/context.js';
import { startFulfillmentWorker } from '../../src/workers/fulfillment.js';
import { startStack, waitFor, type TestStack } from '../helpers/stack.js';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

// The analytics connection points at a second nats-server, so the test can tell which
// connection each message went out on.
let analyticsServer: NatsServerProcess;
let stack: TestStack;
let rt: Runtime;
let mainNc: NatsConnection;
let analyticsNc: NatsConnection;
const seen = { main: [] as string[], analytics: [] as { subject: string; data: Uint8Array }[] };
let worker: { stop(): Promise<void> };

beforeAll(async () => {
  analyticsServer = await startNatsServer({ storeDir: join(mkdtempSync(join(tmpdir(), 'orderflow-analytics-')), 'nats') });
  stack = await startStack({ NATS_ANALYTICS_URL: analyticsServer.url });
  rt = await stack.runtime('fulfillment');
  mainNc = await stack.connect();
  analyticsNc = await connect({ servers: analyticsServer.url });
  mainNc.subscribe('metrics.orders', { callback: (_e, m) => seen.main.push(m.subject) });
  analyticsNc.subscribe('metrics.orders', { callback: (_e, m) => seen.analytics.push({ subject: m.subject, data: m.data }) });
  await Promise.all([mainNc.flush(), analyticsNc.flush()]);
  worker = startFulfillmentWorker(rt);
});
afterAll(async () => {
  await worker.stop();
  await Promise.all([mainNc.close(), analyticsNc.close()]);
  await stack.stop();
  await analyticsServer.stop();
});

const metricsFor = (orderId: string) => seen.analytics.filter((m) => new TextDecoder().decode(m.data).includes(orderId)).length;

/** orders.shipped events for one order stored in ORDERS. */
async function shippedEventsFor(orderId: string): Promise<number> {
  let n = 0;
  // The test's own client reads: the fulfillment identity may not browse ORDERS.
  const jsm = await mainNc.jetstreamManager();
  for await (const m of readStream(mainNc.jetstream(), jsm, { stream: 'ORDERS', subject: OrderEvents.shipped.subject })) {
    const ev = parseEvent(m.subject, m.data);
    if (ev.ok && (ev.event.data as { order_id: string }).order_id === orderId) n++;
  }
  return n;
}

async function paidOrder(amountCents = 4200) {
  const repo = testOrders(rt.storage);
  const o = await repo.create({ customerEmail: 'f@example.com', amountCents, correlationId: `corr-${Math.random()}` });
  return repo.transition(o.id, 'paid', { paidAt: new Date() });
}

describe('fulfillment worker (FulfillOrder jobs on JetStream)', () => {
  it('ships a paid order: orders.shipped into ORDERS (default connection), metrics.orders on the analytics connection', async () => {
    const order = await paidOrder();
    await new JetStreamJobQueue(rt.js).dispatch(Jobs.fulfillOrder, { order_id: order.id }, { correlationId: order.correlationId });

    const repo = testOrders(rt.storage);
    const shipped = await waitFor(async () => ((await repo.find(order.id))?.status === 'shipped' ? repo.find(order.id) : null));
    expect(shipped!.shippedAt).toBeInstanceOf(Date);

    const jsm = await mainNc.jetstreamManager();
    const stored = await jsm.streams.getMessage('ORDERS', { last_by_subj: OrderEvents.shipped.subject });
    const ev = parseEvent(stored.subject, stored.data);
    expect(ev.ok && ev.event).toMatchObject({ type: 'orders.shipped', correlation_id: order.correlationId, data: { order_id: order.id } });

    const metric = await waitFor(() => seen.analytics.find((m) => new TextDecoder().decode(m.data).includes(order.id)));
    const parsed = parseEvent(MetricEvents.orders.subject, metric.data);
    expect(parsed.ok && parsed.event.data).toMatchObject({ event: 'order.shipped', order_id: order.id, amount_cents: 4200 });
    expect(seen.main).toEqual([]); // nothing went to the default server's metrics.orders
  });

  it('the same job delivered twice runs once: the inbox (processed_messages) refuses the second', async () => {
    const order = await paidOrder();
    const job = createJob(Jobs.fulfillOrder, { order_id: order.id }, { correlationId: order.correlationId });
    const bytes = new TextEncoder().encode(JSON.stringify(job));
    const subject = jobSubject(Jobs.fulfillOrder);
    const jsm = await mainNc.jetstreamManager();
    const repo = testOrders(rt.storage);
    await rt.js.publish(subject, bytes); // no Nats-Msg-Id: JetStream stores every copy
    await waitFor(async () => (await repo.find(order.id))?.status === 'shipped', 5000, 'shipped');
    await waitFor(async () => (await jsm.streams.info('JOBS')).state.messages === 0, 5000, 'JOBS drained');
    // Back to paid, so the state machine would ship it again: only the inbox can refuse the copy.
    await stack.db().updateTable('orders').set({ status: 'paid', shipped_at: null }).where('id', '=', order.id).execute();
    await rt.js.publish(subject, bytes);
    await waitFor(async () => (await jsm.streams.info('JOBS')).state.messages === 0, 5000, 'the copy consumed');
    expect((await repo.find(order.id))?.status).toBe('paid');
    expect(n(await stack.db().selectFrom('processed_messages').select((eb) => eb.fn.countAll().as('n')).where('message_id', '=', job.job_id).executeTakeFirst())).toBe(1);
    expect(await shippedEventsFor(order.id)).toBe(1);
    await waitFor(() => metricsFor(order.id) >= 1, 5000, 'its metric');
    expect(metricsFor(order.id)).toBe(1);
  });

  it('two jobs for one order ship it once (the state machine refuses the second)', async () => {
    const order = await paidOrder();
    const q = new JetStreamJobQueue(rt.js);
    await q.dispatch(Jobs.fulfillOrder, { order_id: order.id }, { correlationId: order.correlationId });
    await q.dispatch(Jobs.fulfillOrder, { order_id: order.id }, { correlationId: order.correlationId });
    const jsm = await mainNc.jetstreamManager();
    await waitFor(async () => (await jsm.streams.info('JOBS')).state.messages === 0, 5000, 'JOBS drained');
    expect((await rt.storage.order(order.id))?.status).toBe('shipped');
    expect(await shippedEventsFor(order.id)).toBe(1);
    await waitFor(() => metricsFor(order.id) >= 1, 5000, 'its metric');
    expect(metricsFor(order.id)).toBe(1);
  });

  it('does not ship an unpaid order', async () => {
    const repo = testOrders(rt.storage);
    const o = await repo.create({ customerEmail: 'u@example.com', amountCents: 100, correlationId: 'c-unpaid' });
    await new JetStreamJobQueue(rt.js).dispatch(Jobs.fulfillOrder, { order_id: o.id }, { correlationId: 'c-unpaid' });
    const jsm = await mainNc.jetstreamManager();
    await waitFor(async () => (await jsm.streams.info('JOBS')).state.messages === 0, 5000, 'JOBS drained');
    expect((await repo.find(o.id))?.status).toBe('created');
  });

  it('a delayed job runs no earlier than its delay', async () => {
    const order = await paidOrder();
    const dispatchedAt = Date.now();
    await new JetStreamJobQueue(rt.js).dispatch(Jobs.fulfillOrder, { order_id: order.id }, { correlationId: order.correlationId, delayMs: 1200 });
    const repo = testOrders(rt.storage);
    const shipped = await waitFor(async () => {
      const o = await repo.find(order.id);
      return o?.status === 'shipped' ? o : null;
    }, 6000, 'delayed order shipped');
    expect(shipped.shippedAt!.getTime() - dispatchedAt).toBeGreaterThanOrEqual(1200);
  });
});
