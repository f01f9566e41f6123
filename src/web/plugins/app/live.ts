import { fastifySSE as sse } from '@fastify/sse';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Runtime } from '../../../runtime/context.js';
import { LiveHub } from '../../live/hub.js';
import { StreamRegistry } from '../../live/streams.js';

declare module 'fastify' {
  interface FastifyInstance {
    live: LiveHub;
    rt: Runtime;
    streams: StreamRegistry;
  }
}

/** The live event hub and server-sent events for the order page and the dashboard. */
export default fp(async function live(app: FastifyInstance, opts: { rt: Runtime }) {
  await app.register(sse, { heartbeatInterval: 15_000 });
  const hub = new LiveHub(opts.rt);
  hub.start();
  app.decorate('live', hub);
  app.decorate('rt', opts.rt);
  const streams = new StreamRegistry({ maxClients: opts.rt.config.SSE_MAX_CLIENTS, maxPerIp: opts.rt.config.SSE_MAX_PER_IP });
  app.decorate('streams', streams);
  app.addHook('onClose', async () => {
    streams.close();
    hub.stop();
  });
});
