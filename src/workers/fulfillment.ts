import { Jobs } from '../events/jobs.js';
import { handler, jobMessageHandler } from '../jobs/worker.js';
import { runPullConsumer } from '../nats/consumer.js';
import { CorePublisher, JetStreamPublisher } from '../nats/publishers.js';
import { FULFILLMENT_CONSUMER } from '../nats/topology.js';
import { fulfilOrder } from '../orders/fulfil-order.js';
import { OrderRepository } from '../orders/repository.js';
import type { Runtime } from '../runtime/context.js';

/**
 * The PoC's `queue:work nats`: a durable pull consumer on the JOBS stream (explicit ack) that runs
 * FulfillOrder jobs. orders.shipped goes out on the default connection, metrics.orders on the
 * analytics one.
 */
export function startFulfillmentWorker(rt: Runtime): { stop(): Promise<void> } {
  const log = rt.log.child({ worker: 'fulfillment' });
  const deps = {
    orders: new OrderRepository(rt.db),
    events: new JetStreamPublisher(rt.js),
    metrics: new CorePublisher(rt.nats.analytics),
    log,
  };
  const handlers = [
    handler(Jobs.fulfillOrder, async (payload, ctx) => {
      await fulfilOrder({ ...deps, log: ctx.log }, payload.order_id, { correlationId: ctx.correlationId, causationId: ctx.jobId });
    }),
  ];
  const running = runPullConsumer(rt.js, FULFILLMENT_CONSUMER, jobMessageHandler(handlers, log), log);
  return { stop: () => running.stop() };
}
