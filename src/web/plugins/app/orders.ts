import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { PlaceOrderDeps } from '../../../orders/place-order.js';
import type { StorageReads } from '../../../orders/ports.js';
import { orderDeps, type Runtime } from '../../../runtime/context.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The orders' read side (pages, the list, an order's timeline). */
    orders: StorageReads;
    orderDeps: PlaceOrderDeps;
  }
}

/** The order domain, wired to this process's storage, outbox and NATS, for the routes to use. */
export default fp(async function orders(app: FastifyInstance, opts: { rt: Runtime }) {
  app.decorate('orders', opts.rt.storage);
  app.decorate('orderDeps', orderDeps(opts.rt));
});
