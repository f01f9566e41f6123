import { Jobs } from '../events/jobs.js';
import { handler, jobAttempt, jobMessageHandler } from '../jobs/worker.js';
import { runPullConsumer } from '../nats/consumer.js';
import { CorePublisher } from '../nats/publishers.js';
import { ensureTopology, FULFILLMENT_CONSUMER } from '../nats/topology.js';
import { fulfilOrder } from '../orders/fulfil-order.js';
import type { Runtime } from '../runtime/context.js';

/**
 * The PoC's `queue:work nats`: a durable pull consumer on the JOBS stream (explicit ack) that runs
 * FulfillOrder jobs. orders.shipped goes out through the outbox on the default connection,
 * metrics.orders on the analytics one.
 */
export function startFulfillmentWorker(rt: Runtime): { stop(): Promise<void> } {
  const log = rt.log.child({ worker: 'fulfillment' });
  const deps = { sql: rt.sql, outbox: rt.outbox, metrics: new CorePublisher(rt.nats.analytics), log };
  const handlers = [
    handler(Jobs.fulfillOrder, async (payload, ctx) => {
      await fulfilOrder({ ...deps, log: ctx.log }, payload.order_id, ctx.jobId, { correlationId: ctx.correlationId, causationId: ctx.jobId });
    }),
    handler(Jobs.demo, async (payload, ctx) => {
      if (payload.fail) throw new Error(`demo job failed on purpose: ${payload.message}`);
      ctx.log.info({ message: payload.message }, 'demo job ran');
    }),
  ];
  const running = runPullConsumer(rt.js, FULFILLMENT_CONSUMER, jobMessageHandler(handlers, log), log, {
    maxDeliveries: rt.config.MAX_DELIVERIES,
    attemptOf: jobAttempt,
    // Jobs are independent; the inbox and the state machine keep concurrent ones for one order safe.
    concurrency: 16,
    ensure: async () => void (await ensureTopology(await rt.nats.default.jetstreamManager(), { ordersMaxAgeDays: rt.config.ORDERS_STREAM_MAX_AGE_DAYS })),
  });
  return {
    stop: () => running.stop(),
  };
}
