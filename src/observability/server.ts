import { createServer, type Server } from 'node:http';
import type { Runtime } from '../runtime/context.js';
import { health, publicReadiness, readiness } from './health.js';
import { registry } from './metrics.js';

/**
 * A worker's /health, /ready and /metrics (the web app serves the same routes itself). Plain
 * node:http: three read-only routes do not need a framework.
 */
export async function startOpsServer(rt: Runtime, host: string, port: number): Promise<{ url: string; stop(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    const path = (req.url ?? '/').split('?')[0];
    // The API's error shape (web/errors.ts), with the codes it lists.
    const error = (status: number, code: string, message: string) => send(status, 'application/json', JSON.stringify({ error: code, message }));
    if (req.method !== 'GET') return error(405, 'method_not_allowed', `${req.method} is not served here; use GET /health, /ready or /metrics.`);
    if (path === '/health') return send(200, 'application/json', JSON.stringify(health(rt.instance)));
    if (path === '/ready') return void readiness(rt).then((r) => send(r.ready ? 200 : 503, 'application/json', JSON.stringify(publicReadiness(r))));
    if (path === '/metrics') return void registry.metrics().then((m) => send(200, registry.contentType, m));
    error(404, 'not_found', `Nothing at ${path}; a worker serves GET /health, /ready and /metrics.`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  rt.log.info({ url: `http://${host}:${actual}` }, `metrics and health on http://${host}:${actual}`);
  return {
    url: `http://${host}:${actual}`,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
