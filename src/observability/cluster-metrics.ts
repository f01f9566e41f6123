import cluster from 'node:cluster';
import type { ChildProcess } from 'node:child_process';
import { AggregatorRegistry, type PrometheusContentType } from 'prom-client';
import { registry } from './metrics.js';

/**
 * /metrics when several web copies share one port (`orderflow start --scale web=N`, node:cluster):
 * a scrape reaches whichever copy takes the connection, so each copy's own figures would take
 * turns, counters jumping back and forth. Instead the copy that was asked has the cluster primary
 * (the supervisor) collect every copy's registry over IPC and sum it (prom-client's
 * AggregatorRegistry: counters and histograms add up; each default metric says how it combines),
 * so one scrape of the port is the web tier as a whole. Outside a cluster this is not used.
 */
const REQUEST = 'orderflow:metrics';
type Request = { type: typeof REQUEST; id: number };
type Answer = { type: typeof REQUEST; id: number; text?: string; error?: string };

/** In a web copy that is a cluster worker: a function fetching the summed metrics; elsewhere undefined. */
export function clusterMetrics(timeoutMs = 5000): (() => Promise<string>) | undefined {
  if (!cluster.isWorker || !process.send) return undefined;
  // Answers the primary's collection requests with this process's own registry (not the system
  // gauges: the copy asked adds those once).
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  let next = 0;
  const waiting = new Map<number, (a: Answer) => void>();
  process.on('message', (m: Answer) => {
    if (m?.type === REQUEST) waiting.get(m.id)?.(m);
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => settle({ type: REQUEST, id, error: `the other web copies did not answer within ${timeoutMs} ms` }), timeoutMs);
      const settle = (a: Answer) => {
        clearTimeout(timer);
        waiting.delete(id);
        if (a.text !== undefined) resolve(a.text);
        else reject(new Error(a.error ?? 'no metrics'));
      };
      waiting.set(id, settle);
      process.send!({ type: REQUEST, id } satisfies Request);
    });
}

let aggregator: AggregatorRegistry<PrometheusContentType> | undefined;

/** In the supervisor: answers a web copy's request (true if `msg` was one). */
export function answerMetricsRequest(child: ChildProcess, msg: unknown): boolean {
  const m = msg as Partial<Request> | null;
  if (m?.type !== REQUEST || typeof m.id !== 'number') return false;
  const id = m.id;
  aggregator ??= new AggregatorRegistry();
  aggregator.clusterMetrics().then(
    (text: string) => child.connected && child.send({ type: REQUEST, id, text } satisfies Answer),
    (err: Error) => child.connected && child.send({ type: REQUEST, id, error: err.message } satisfies Answer),
  );
  return true;
}
