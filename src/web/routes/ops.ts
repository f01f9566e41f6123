import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { clusterMetrics } from '../../observability/cluster-metrics.js';
import { refreshSystemGauges } from '../../observability/gauges.js';
import { health, publicReadiness, readiness } from '../../observability/health.js';
import { registry, systemRegistry } from '../../observability/metrics.js';
import type { Runtime } from '../../runtime/context.js';

/** For load balancers and Prometheus: liveness, readiness, metrics. */
export default async function ops(app: FastifyInstance, opts: { rt: Runtime }) {
  const { rt } = opts;
  // This process's own figures plus the system-wide gauges, which only the web app refreshes.
  const webMetrics = Registry.merge([registry, systemRegistry]);
  // Several copies behind one port: every copy's own figures, summed (see cluster-metrics.ts).
  const summed = clusterMetrics();
  const collect = summed ? async () => `${await summed()}\n${await systemRegistry.metrics()}` : () => webMetrics.metrics();
  // Public, so nothing a visitor could use: no pid, no versions (the worker's own ports keep the pid).
  app.get('/health', async () => {
    const { pid: _pid, ...h } = health(rt.instance);
    return h;
  });
  // Anyone sees which part is away; an operator also sees why (the causes name hosts and databases).
  app.get('/ready', async (req, reply) => {
    const r = await readiness(rt);
    return reply.code(r.ready ? 200 : 503).send(app.isOperator(req, reply) ? r : publicReadiness(r));
  });
  app.get('/metrics', async (req, reply) => {
    // The system-wide gauges are read at scrape time; a failure there must not hide the rest.
    await refreshSystemGauges(rt.storage, await rt.nats.default.jetstreamManager()).catch((err: Error) =>
      req.log.warn({ err: err.message }, 'could not refresh system gauges'),
    );
    // nodejs_version_info names the exact runtime version: an attacker's shortcut, not an operator's need.
    const text = (await collect()).replace(/^(# (HELP|TYPE) )?orderflow_nodejs_version_info\b.*\n/gm, '');
    return reply.type(registry.contentType).send(text);
  });
}
