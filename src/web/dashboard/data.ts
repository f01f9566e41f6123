import { RequestStrategy, type JetStreamManager, type NatsConnection } from 'nats';
import { orderStatus, PaymentsValidate, WorkerHeartbeat } from '../../events/contracts.js';
import type { StorageReads } from '../../orders/ports.js';
import { DLQ_STREAM, listDeadLetters } from '../../nats/dead-letters.js';
import { JOBS_STREAM, ORDERS_STREAM } from '../../nats/topology.js';
import { PAYMENTS_SERVICE } from '../../workers/payments.js';
import type { LiveHub } from '../live/hub.js';
import type { Runtime } from '../../runtime/context.js';
import { coalesce } from './coalesce.js';

const BUCKET_S = 10;
const WINDOW_S = 300;

export interface StreamView {
  name: string;
  subjects: string[];
  messages: number;
  bytes: number;
  first_seq: number;
  last_seq: number;
  consumers: { name: string; pending: number; ack_pending: number; redelivered: number; waiting: number; delivered_seq: number }[];
}

/** dashboardData for many concurrent callers (see coalesce). */
export function cachedDashboardData(rt: Pick<Runtime, 'storage' | 'nats'>, hub: LiveHub, maxAgeMs = 1000): () => Promise<DashboardData> {
  const get = coalesce(async (_: 'all') => dashboardData(rt.storage, rt.nats.default, await rt.nats.default.jetstreamManager(), hub), maxAgeMs);
  return () => get('all');
}
export type DashboardData = Awaited<ReturnType<typeof dashboardData>>;

/** Everything the dashboard shows, in one JSON document (also what /dashboard/data serves). */
export async function dashboardData(db: DashboardReads, nc: NatsConnection, jsm: JetStreamManager, hub: LiveHub) {
  hub.forgetOld();
  const [orders, streams, dlq, payments] = await Promise.all([orderFigures(db), streamViews(jsm), listDeadLetters(jsm, 20).catch(() => ({ total: 0, items: [] })), paymentsInstances(nc)]);
  const now = Date.now();
  const workers = [...hub.heartbeats.values()]
    .map((h) => {
      const status = workerStatus(h, now);
      // name: the kind; instance: which copy of it (its own name when it runs once).
      return { name: h.name, instance: h.instance ?? h.name, pid: h.pid, host: h.host, started_at: h.started_at, last_seen_ms: now - h.seen_at, status, up: status === 'up' };
    })
    .sort((a, b) => a.name.localeCompare(b.name) || a.instance.localeCompare(b.instance, 'en', { numeric: true }) || a.host.localeCompare(b.host));
  return { at: new Date(now).toISOString(), orders, streams, dlq, workers, payments_service: { name: PAYMENTS_SERVICE.name, subject: PaymentsValidate.subject, instances: payments }, events: hub.recent };
}

/**
 * up: beating. stopped: said goodbye (a clean shutdown). silent: missed three beats (crashed,
 * killed, or cut off from NATS). The hub forgets each after a while (see LiveHub).
 */
export function workerStatus(h: { seen_at: number; state?: 'running' | 'stopped' | undefined }, now: number): 'up' | 'stopped' | 'silent' {
  if (h.state === 'stopped') return 'stopped';
  return now - h.seen_at < WorkerHeartbeat.everyMs * 3 ? 'up' : 'silent';
}

type DashboardReads = Pick<StorageReads, 'statusCounts' | 'throughput' | 'recentLeadTimes'>;

async function orderFigures(db: DashboardReads) {
  const { byStatus: counts } = await db.statusCounts();
  const byStatus = Object.fromEntries(orderStatus.options.map((s) => [s, counts[s] ?? 0]));
  // Orders created and shipped per 10 s over the last 5 minutes, counted by the database.
  const { created, shipped } = await db.throughput(new Date(Date.now() - WINDOW_S * 1000), BUCKET_S);
  const last = Math.floor(Date.now() / 1000 / BUCKET_S);
  const series = Array.from({ length: WINDOW_S / BUCKET_S }, (_, i) => {
    const b = last - (WINDOW_S / BUCKET_S - 1) + i;
    const c = created.find((r) => r.bucket === b);
    const s = shipped.find((r) => r.bucket === b);
    return { t: new Date(b * BUCKET_S * 1000).toISOString(), created_per_s: Number(c?.n ?? 0) / BUCKET_S, shipped_per_s: Number(s?.n ?? 0) / BUCKET_S };
  });
  const sorted = (await db.recentLeadTimes(1000)).sort((a, b) => a - b);
  const pct = (p: number) => (sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!) : null);
  return { by_status: byStatus, total: Object.values(byStatus).reduce((a, b) => a + b, 0), throughput: series, end_to_end_ms: { p50: pct(50), p99: pct(99), samples: sorted.length } };
}

async function streamViews(jsm: JetStreamManager): Promise<StreamView[]> {
  const views: StreamView[] = [];
  for (const name of [ORDERS_STREAM, JOBS_STREAM, DLQ_STREAM]) {
    const info = await jsm.streams.info(name).catch(() => null);
    if (!info) continue;
    const consumers = await jsm.consumers.list(name).next();
    views.push({
      name,
      subjects: info.config.subjects ?? [],
      messages: info.state.messages,
      bytes: info.state.bytes,
      first_seq: info.state.first_seq,
      last_seq: info.state.last_seq,
      consumers: consumers.map((c) => ({
        name: c.name,
        pending: c.num_pending,
        ack_pending: c.num_ack_pending,
        redelivered: c.num_redelivered,
        waiting: c.num_waiting,
        delivered_seq: c.delivered.stream_seq,
      })),
    });
  }
  return views;
}

/** How many payment responders answer $SRV.PING right now. */
async function paymentsInstances(nc: NatsConnection): Promise<number> {
  try {
    let n = 0;
    for await (const _ of await nc.services.client({ maxWait: 300, strategy: RequestStrategy.Timer }).ping(PAYMENTS_SERVICE.name)) n++;
    return n;
  } catch {
    return 0;
  }
}
