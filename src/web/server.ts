import type { FastifyInstance } from 'fastify';
import { resolveOperatorToken, signInUrl } from '../config/operator-token.js';
import type { Runtime } from '../runtime/context.js';
import { buildApp } from './app.js';

const STREAMS_GRACE_MS = 1000;

/**
 * Builds the app and listens on HOST:PORT (PORT=0 picks a free port; `url` says which).
 * `signInUrl`: the operator's sign-in link (with the token when it was generated into DATA_DIR).
 */
export async function startWeb(rt: Runtime): Promise<{ app: FastifyInstance; url: string; signInUrl: string; stop(): Promise<void> }> {
  const operator = resolveOperatorToken(rt.config);
  const app = await buildApp(rt, operator);
  await app.listen({ host: rt.config.HOST, port: rt.config.PORT });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : rt.config.PORT;
  const host = rt.config.HOST.includes(':') ? `[${rt.config.HOST}]` : rt.config.HOST;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;
  return {
    app,
    url,
    signInUrl: signInUrl(url, operator),
    // Stops accepting connections and waits for in-flight requests to finish. The live pages'
    // event streams never finish by themselves (they held a shutdown until close-with-grace
    // killed the process): after a grace period for ordinary requests, their sockets are closed.
    stop: async () => {
      const closing = app.close();
      const cut = setTimeout(() => app.server.closeAllConnections(), STREAMS_GRACE_MS);
      await closing;
      clearTimeout(cut);
    },
  };
}
