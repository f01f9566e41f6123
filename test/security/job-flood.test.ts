import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJob, Jobs, jobSubject } from '../../src/events/jobs.js';
import { correlationHeaders, encodeJson } from '../../src/nats/codec.js';
import { listDeadLetters } from '../../src/nats/dead-letters.js';
import { FULFILLMENT_CONSUMER, FULFILLMENT_DELAY_CONSUMER, JOBS_STREAM } from '../../src/nats/topology.js';
import { placeOrder } from '../../src/orders/place-order.js';
import { orderDeps, type Runtime } from '../../src/runtime/context.js';
import { startFulfillmentWorker } from '../../src/workers/fulfillment.js';
import { startPaymentResponder } from '../../src/workers/payments.js';
import { startStack, waitFor, type TestStack } from '../helpers/stack.js';

/**
 * Issue 10's job-delay flood: 1,100 jobs held for an hour used to fill the JOBS consumer's 1,000
 * ack-pending slots, and paid orders waited. Delayed jobs now wait in their own lane; a job due
 * in 9999 is dead-lettered instead of being redelivered thousands of times a second.
 * Every process runs as its real NATS identity.
 */
let stack: TestStack;
let web: Runtime;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  stack = await startStack();
  web = await stack.runtime('web');
  stops.push((await startPaymentResponder(await stack.runtime('payments'))).stop);
  stops.push(startFulfillmentWorker(await stack.runtime('fulfillment')).stop);
});
afterAll(async () => {
  for (const s of stops) await s();
  await stack.stop();
});

const publishDemo = (delayMs: number, at?: Date) => {
  const job = createJob(Jobs.demo, { message: 'flood', fail: false }, { correlationId: 'flood', delayMs }, at);
  return web.js.publish(jobSubject(Jobs.demo), encodeJson(job), { msgID: job.job_id, headers: correlationHeaders('flood') });
};

describe('the job-delay flood', () => {
  it('1,100 jobs delayed by an hour do not stop paid orders from shipping', { timeout: 180_000 }, async () => {
    for (let i = 0; i < 1100; i += 100) await Promise.all(Array.from({ length: 100 }, () => publishDemo(3_600_000)));
    const jsm = await (await stack.connect()).jetstreamManager();
    // All of them end up waiting in the delay lane, none in the queue's ack-pending slots.
    await waitFor(async () => {
      const lane = await jsm.consumers.info(JOBS_STREAM, FULFILLMENT_DELAY_CONSUMER.config.durable_name);
      return lane.num_ack_pending + lane.num_pending === 1100;
    }, 120_000, 'the delayed jobs in the delay lane');
    const queue = await jsm.consumers.info(JOBS_STREAM, FULFILLMENT_CONSUMER.config.durable_name);
    expect(queue.num_ack_pending).toBeLessThan(1000);

    const orders = await Promise.all(Array.from({ length: 5 }, (_, i) => placeOrder(orderDeps(web), { customerEmail: `flood${i}@example.com`, amountCents: 1250, correlationId: `flood-${i}` })));
    expect(orders.map((o) => o.status)).toEqual(Array(5).fill('paid'));
    // A generous bound on a shared machine; before the fix they waited 75 s and more.
    await waitFor(async () => (await Promise.all(orders.map((o) => web.storage.order(o.id)))).every((o) => o?.status === 'shipped'), 60_000, 'the new orders shipped');
    // The delayed jobs are still there, waiting for their hour.
    const lane = await jsm.consumers.info(JOBS_STREAM, FULFILLMENT_DELAY_CONSUMER.config.durable_name);
    expect(lane.num_ack_pending + lane.num_pending).toBe(1100);
  });

  it('a job due on 9999-12-31 is dead-lettered with the reason, not redelivered forever', async () => {
    const farFuture = new Date('9999-12-31T00:00:00.000Z');
    const job = { ...createJob(Jobs.demo, { message: 'far', fail: false }, { correlationId: 'far' }), run_at: farFuture.toISOString() };
    await web.js.publish(jobSubject(Jobs.demo), encodeJson(job), { msgID: job.job_id });
    const jsm = await (await stack.connect()).jetstreamManager();
    const dl = await waitFor(async () => (await listDeadLetters(jsm)).items.find((d) => d.error.includes('9999-12-31')), 30_000, 'the far-future job dead-lettered');
    expect(dl).toMatchObject({ consumer: 'jobs-fulfillment', subject: 'jobs.fulfillment.demo', deliveries: 1 });
    expect(dl.error).toMatch(/JOB_MAX_DELAY_MS/);
    // Delivered once and gone from the queue: nothing left to loop.
    const queue = await jsm.consumers.info(JOBS_STREAM, FULFILLMENT_CONSUMER.config.durable_name);
    expect(queue.num_redelivered).toBe(0);
  });
});
