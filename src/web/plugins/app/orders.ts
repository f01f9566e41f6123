import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { PlaceOrderDeps } from '../../../orders/place-order.js';
import { OrderRepository } from '../../../orders/repository.js';
import { orderDeps, type Runtime } from '../../../runtime/context.js';

declare module 'fastify' {
  interface FastifyInstance {
    orders: OrderRepository;
    orderDeps: PlaceOrderDeps;
  }
}

/** The order domain, wired to this process's database, outbox and NATS, for the routes to use. */
export default fp(async function orders(app: FastifyInstance, opts: { rt: Runtime }) {
  app.decorate('orders', new OrderRepository(opts.rt.db, opts.rt.sql));
  app.decorate('orderDeps', orderDeps(opts.rt));
});
