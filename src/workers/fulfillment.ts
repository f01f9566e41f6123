import { Jobs } from '../events/jobs.js';
import { delayLaneHandler, handler, jobAttempt, jobMessageHandler } from '../jobs/worker.js';
import { pullClient, runPullConsumer } from '../nats/consumer.js';
import { CorePublisher } from '../nats/publish.js';
import { FULFILLMENT_CONSUMER, FULFILLMENT_DELAY_CONSUMER, recreateMissing, topologyOptions } from '../nats/topology.js';
import { fulfilOrder } from '../orders/fulfil-order.js';
import type { Runtime } from '../runtime/context.js';

/**
 * Jobs in hand at once. The jobs in hand when the writer flushes share one commit, and every
 * commit waits its turn for the one SQLite write lock (or a PostgreSQL connection), so this
 * bounds how many jobs a turn can ship. With 16, offered more than the machine could take the
 * worker fell behind the web app and then further, the more the web app accepted: offered
 * 1,000 orders/s it finished ~340/s where 600/s finished 594/s (`npm run bench`, three runs).
 * Back to back (`npm run bench:pipeline -- sqlite 600,1000 15`): 441 → 593/s at 600/s offered
 * and 317 → 578/s at 1,000/s with 128, the e2e p50 at 1,000/s 9.5 s → 0.6 s. Under JOBS'
 * max_ack_pending (1,000).
 */
const FULFILLMENT_CONCURRENCY = 128;

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
    concurrency: FULFILLMENT_CONCURRENCY,
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
