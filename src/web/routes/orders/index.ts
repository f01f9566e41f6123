import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { placeOrder } from '../../../orders/place-order.js';
import { wantsJson } from '../../negotiate.js';
import { orderJson } from '../../order-json.js';
import { fieldErrors, listQuery, orderInput, orderParams } from '../../schemas.js';
import { formatCents } from '../../../orders/money.js';
import { apiError } from '../../errors.js';

const helpers = { formatCents };

/**
 * Public: the order form, placing an order (the shop) and a customer's own order by its
 * unguessable id (page, JSON, live stream). Operators only: the list of every order.
 */
export default async function orders(app: FastifyInstance) {
  app.get('/create', async (_req, reply) => reply.view('orders/create', { values: {}, errors: {}, csrf: reply.generateCsrf() }));

  // Browsers post the form with its CSRF token; scripts post JSON without cookies (see publicWrites).
  app.post('/', { preHandler: app.publicWrites, ...(app.limits.orders ? { config: { rateLimit: app.limits.orders } } : {}) }, async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const parsed = orderInput.safeParse(body);
    if (!parsed.success) {
      const errors = fieldErrors(parsed.error);
      reply.code(400);
      if (wantsJson(req)) return apiError('validation_failed', `Correct ${Object.keys(errors).join(' and ')} and send the order again.`, errors);
      return reply.view('orders/create', { values: { customer_email: String(body.customer_email ?? ''), amount: String(body.amount ?? '') }, errors, csrf: reply.generateCsrf() });
    }
    const order = await placeOrder(
      // The request's logger (a pino child carrying the correlation id).
      { ...app.orderDeps, log: req.log as unknown as Logger },
      { customerEmail: parsed.data.customer_email, amountCents: parsed.data.amount, correlationId: req.id },
    );
    const location = `/orders/${order.id}`;
    if (wantsJson(req)) return reply.code(201).header('location', location).send(orderJson(order));
    return reply.redirect(location, 303);
  });

  app.get('/', { onRequest: app.operatorOnly }, async (req, reply) => {
    const q = listQuery.safeParse(req.query);
    if (!q.success) {
      reply.code(400);
      return wantsJson(req) ? apiError('validation_failed', 'page and per_page must be positive whole numbers (per_page at most 100).', fieldErrors(q.error)) : reply.view('error', { title: 'Bad request', message: 'page and per_page must be positive whole numbers (per_page at most 100).' });
    }
    const page = await app.orders.orderPage(q.data.page, q.data.per_page);
    if (wantsJson(req)) return { items: page.items.map((o) => orderJson(o)), page: page.page, per_page: page.perPage, total: page.total, pages: page.pages };
    return reply.view('orders/index', { page, ...helpers });
  });

  // The order page's live feed: a message whenever an event about this order is published.
  app.get('/:id/stream', { sse: 'only' }, async (req, reply) => {
    const p = orderParams.safeParse(req.params);
    if (!p.success) return reply.code(404).send(apiError('not_found', 'No order with that id; order ids are UUIDs.'));
    const stream = app.streams.open(req, reply);
    if (!stream) return reply;
    reply.sse.keepAlive();
    // A first message commits the stream at once (headers alone would wait for the first event).
    await reply.sse.send({ event: 'ready', data: {} });
    const stop = app.live.listenOrder(p.data.id, (e) => stream.send({ event: 'order-event', data: e }));
    reply.sse.onClose(stop);
  });

  app.get('/:id', async (req, reply) => {
    const p = orderParams.safeParse(req.params);
    const order = p.success ? await app.orders.order(p.data.id) : null;
    if (!order) {
      reply.code(404);
      return wantsJson(req) ? apiError('not_found', 'No order with that id; list the orders at GET /orders.') : reply.view('error', { title: 'Order not found', message: 'There is no order with that id.' });
    }
    const timeline = await app.orders.activityFor(order.id);
    const json = orderJson(order, timeline);
    if (wantsJson(req)) return json;
    return reply.view('orders/show', { order: json });
  });
}
