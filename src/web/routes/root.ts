import type { FastifyInstance } from 'fastify';

export default async function root(app: FastifyInstance) {
  app.get('/', async (_req, reply) => reply.redirect('/orders/create'));
}
