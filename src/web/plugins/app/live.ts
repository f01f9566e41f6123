import { fastifySSE as sse } from '@fastify/sse';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Runtime } from '../../../runtime/context.js';
import { LiveHub } from '../../live/hub.js';

declare module 'fastify' {
  interface FastifyInstance {
    live: LiveHub;
    rt: Runtime;
  }
}

/** The live event hub and server-sent events for the order page and the dashboard. */
export default fp(async function live(app: FastifyInstance, opts: { rt: Runtime }) {
  await app.register(sse, { heartbeatInterval: 15_000 });
  const hub = new LiveHub(opts.rt);
  hub.start();
  app.decorate('live', hub);
  app.decorate('rt', opts.rt);
  app.addHook('onClose', async () => hub.stop());
});
