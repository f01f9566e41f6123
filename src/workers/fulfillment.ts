import { Jobs } from '../events/jobs.js';
import { delayLaneHandler, handler, jobAttempt, jobMessageHandler } from '../jobs/worker.js';
import { pullClient, runPullConsumer } from '../nats/consumer.js';
import { CorePublisher } from '../nats/publish.js';
import { FULFILLMENT_CONSUMER, FULFILLMENT_DELAY_CONSUMER, recreateMissing, topologyOptions } from '../nats/topology.js';
import { fulfilOrder } from '../orders/fulfil-order.js';
import type { Runtime } from '../runtime/context.js';

/**
 * The PoC's `queue:work nats`: a durable pull consumer on the JOBS stream (explicit ack) that runs
 * FulfillOrder jobs. orders.shipped goes out through the outbox on the default connection,
 * metrics.orders on the analytics one. Jobs not due yet wait in the queue's delay lane, a second
 * consumer, so they never hold the slots due jobs need.
 */
export function startFulfillmentWorker(rt: Runtime): { stop(): Promise<void> } {
  const log = rt.log.child({ worker: 'fulfillment' });
  const deps = { storage: rt.storage, outbox: rt.outbox, metrics: new CorePublisher(rt.nats.analytics), log };
  const handlers = [
    handler(Jobs.fulfillOrder, async (payload, ctx) => {
      // fulfilOrder names the order, job and correlation ids in each line it logs itself.
      await fulfilOrder(deps, payload.order_id, ctx.jobId, { correlationId: ctx.correlationId, causationId: ctx.jobId });
    }),
    handler(Jobs.demo, async (payload, ctx) => {
      if (payload.fail) throw new Error(`demo job failed on purpose: ${payload.message}`);
      ctx.log.info({ message: payload.message }, 'demo job ran');
    }),
  ];
  const maxDelayMs = rt.config.JOB_MAX_DELAY_MS;
  // A wiped store: this worker re-creates its stream and consumers (create only, see nats/auth).
  const ensure = async () => {
    const created = await recreateMissing(await rt.nats.default.jetstreamManager(), topologyOptions(rt.config), [
      FULFILLMENT_CONSUMER,
      FULFILLMENT_DELAY_CONSUMER,
    ]);
    if (created.length) log.warn({ created }, 're-created what the NATS server had lost');
  };
  // The consumers' own client has a short API timeout (see PULL_API_TIMEOUT_MS); moves use rt.js.
  const pulls = pullClient(rt.nats.default);
  const running = runPullConsumer(pulls, FULFILLMENT_CONSUMER, jobMessageHandler(handlers, log, { js: rt.js, maxDelayMs }), log, {
    maxDeliveries: rt.config.MAX_DELIVERIES,
    attemptOf: jobAttempt,
    // Jobs are independent; the inbox and the state machine keep concurrent ones for one order safe.
    concurrency: 16,
    ensure,
  });
  const lane = runPullConsumer(pulls, FULFILLMENT_DELAY_CONSUMER, delayLaneHandler(rt.js, log, { maxDelayMs }), log, {
    maxDeliveries: rt.config.MAX_DELIVERIES,
    concurrency: 64,
    ensure,
  });
  return {
    stop: async () => {
      await Promise.all([running.stop(), lane.stop()]);
    },
  };
}
