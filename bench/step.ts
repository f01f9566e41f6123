/**
 * A pipeline step: an open-loop offered load for a fixed time, then a bounded wait until every
 * stage is empty, then every accepted order followed to shipped. No order is left out: a step
 * whose orders cannot all be counted has its latency refused.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OrderEvents } from '../src/events/contracts.js';
import { ACTIVITY_CONSUMER } from '../src/nats/topology.js';
import { type Backlog, backlogOldest, backlogTotal, type Pipeline, STAGES } from './backlog.js';
import type { BenchDb } from './db.js';
import { type LatencyFigures, type OpenLoopResult, openLoop, percentile, round, say, sleep } from './lib.js';

export interface Latency {
  whole: LatencyFigures;
  last_third: LatencyFigures;
}

export interface Step {
  offered_per_s: number;
  step_s: number;
  accepted: number;
  accepted_per_s: number;
  /** Orders that reached a final state during the step, per second of the step. */
  finished_per_s: number;
  /** From the step's end until every stage had nothing left (null: not within the limit). */
  drained_in_s: number | null;
  /** Each stage's lag when the last request went out (web_http: requests not yet answered). */
  backlog_end: Backlog & { web_http: { pending: number; oldest_ms: number }; total: number; oldest_ms: number };
  http: OpenLoopResult;
  /** orders.created → orders.shipped, from the events' own timestamps (null: refused, see samples). */
  e2e_events_ms: Latency | null;
  /** The request leaving the client → the order's shipped_at (stamped in the shipping transaction). */
  post_to_shipped_ms: Latency | null;
  /** Accepted orders with a latency sample, in %; a step below 100 is refused. */
  samples_pct_of_accepted: number;
  /** CPU of every process from the step's start until it had drained, per accepted order. */
  cpu_ms_per_order: number;
  cpu_ms_per_order_by_process: Record<string, number>;
  sustained: boolean;
  not_sustained_because: string[];
}

export interface StepContext {
  db: BenchDb;
  pipe: Pipeline;
  url: string;
  /** Where the load generator writes its ids file. */
  dir: string;
  /** CPU time (ms) so far of every process measured, by name. */
  cpuOf: () => Record<string, number>;
}

export interface StepLimits {
  stepS: number;
  /** How long the backlog may take to drain before the step counts as not drained. */
  drainLimitMs: number;
  /** The slowest stage may be this far behind at the step's end for the step to count as sustained. */
  maxLagMs: number;
}

/** One step of offered load: its throughput, every stage's lag at its end, every order's latency, CPU. */
export async function pipelineStep(rate: number, { db, pipe, url, dir, cpuOf }: StepContext, { stepS, drainLimitMs, maxLagMs }: StepLimits): Promise<Step> {
  say(`pipeline: ${rate} orders/s offered for ${stepS} s`);
  const idsFile = join(dir, `ids-${rate}.csv`);
  const lastActivityRow = await db.lastActivityId();
  const createdFrom = new Date();
  const finishedBefore = await pipe.finished();
  const cpuBefore = cpuOf();
  const load = openLoop(url, rate, stepS, idsFile);
  const started = await load.started;
  const sent = await load.sent;
  // The step's end: what each stage has not done yet.
  const [finishedAtEnd, stages] = await Promise.all([pipe.finished(), pipe.backlog()]);
  const web_http = { pending: sent.inflight, oldest_ms: sent.oldest_inflight_ms };
  const backlog_end = { web_http, ...stages, total: backlogTotal(stages) + web_http.pending, oldest_ms: Math.max(web_http.oldest_ms, backlogOldest(stages)) };
  const endedAt = Date.now();
  const drained = await drain(pipe, drainLimitMs, load.result);
  const drained_in_s = drained === null ? null : round((Date.now() - endedAt) / 1000, 1);
  const cpuAfter = cpuOf();
  const http = await load.result;

  // Every accepted order, followed to shipped: the client's send time, the events' timestamps, shipped_at.
  const accepted = readFileSync(idsFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => ({ id: l.split(',')[0]!, sent: Number(l.split(',')[1]) }));
  const shippedAt = await db.shippedAt(createdFrom);
  const events = await db.events(lastActivityRow, ACTIVITY_CONSUMER.config.durable_name, [OrderEvents.created.subject, OrderEvents.shipped.subject]);
  const createdEvent = new Map<string, number>();
  const shippedEvent = new Map<string, number>();
  for (const e of events) (e.subject === OrderEvents.created.subject ? createdEvent : shippedEvent).set(e.order_id, e.occurred_at);
  const lastThirdFrom = started + (stepS * 1000 * 2) / 3;
  const e2e = { whole: [] as number[], last_third: [] as number[] };
  const toShipped = { whole: [] as number[], last_third: [] as number[] };
  for (const o of accepted) {
    const c = createdEvent.get(o.id);
    const s = shippedEvent.get(o.id);
    const shipped = shippedAt.get(o.id);
    const late = o.sent >= lastThirdFrom;
    if (c !== undefined && s !== undefined) {
      e2e.whole.push(s - c);
      if (late) e2e.last_third.push(s - c);
    }
    if (shipped !== undefined) {
      toShipped.whole.push(shipped - o.sent);
      if (late) toShipped.last_third.push(shipped - o.sent);
    }
  }
  const acceptedN = http.answered - http.non_2xx;
  const samples = Math.min(e2e.whole.length, toShipped.whole.length, accepted.length);
  const samples_pct_of_accepted = acceptedN === 0 ? 0 : round((100 * samples) / acceptedN, 2);
  // A latency figure that leaves out some orders (the slowest, as a rule) would flatter: refuse it.
  const complete = samples === acceptedN && acceptedN > 0;
  const latency = (l: { whole: number[]; last_third: number[] }): Latency | null =>
    complete ? { whole: figures(l.whole), last_third: figures(l.last_third) } : null;

  const cpu = Object.fromEntries(Object.keys(cpuAfter).map((k) => [k, cpuAfter[k]! - cpuBefore[k]!]));
  const cpuTotal = Object.values(cpu).reduce((a, b) => a + b, 0);
  const perOrder = (ms: number) => round(ms / Math.max(1, acceptedN), 2);
  const finished_per_s = round((finishedAtEnd - finishedBefore) / sent.send_seconds, 0);

  const why: string[] = [];
  if (http.errors || http.non_2xx) {
    const kinds = Object.entries(http.error_kinds ?? {}).map(([k, n]) => `${k} ×${n}`);
    why.push(`${http.errors} errors${kinds.length ? ` (${kinds.join(', ')})` : ''}, ${http.non_2xx} non-2xx answers`);
  }
  if (http.sent_per_s < 0.95 * rate) why.push(`the load generator sent only ${http.sent_per_s}/s`);
  if (!complete) why.push(`only ${samples} of ${acceptedN} accepted orders have a latency sample`);
  if (finished_per_s < 0.9 * rate) why.push(`finished ${finished_per_s}/s during the step`);
  if (!(backlog_end.oldest_ms <= maxLagMs)) {
    const slowest = (['web_http', ...STAGES] as const).reduce((a, b) => (backlog_end[b].oldest_ms > backlog_end[a].oldest_ms ? b : a));
    why.push(`${slowest} ${backlog_end.oldest_ms} ms behind at the step's end`);
  }
  if (drained === null) why.push(`not drained ${drainLimitMs / 1000} s after the step`);
  return {
    offered_per_s: rate,
    step_s: round(sent.send_seconds, 1),
    accepted: acceptedN,
    accepted_per_s: round(acceptedN / sent.send_seconds, 0),
    finished_per_s,
    drained_in_s,
    backlog_end,
    http,
    e2e_events_ms: latency(e2e),
    post_to_shipped_ms: latency(toShipped),
    samples_pct_of_accepted,
    cpu_ms_per_order: perOrder(cpuTotal),
    cpu_ms_per_order_by_process: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, perOrder(v)])),
    sustained: why.length === 0,
    not_sustained_because: why,
  };
}

function figures(l: number[]): LatencyFigures {
  l.sort((a, b) => a - b);
  return { p50_ms: round(percentile(l, 50), 1), p99_ms: round(percentile(l, 99), 1), max_ms: round(l.at(-1) ?? NaN, 1), samples: l.length };
}

/**
 * Waits until every stage has nothing left (and `also`, if given, has settled): no open order, no
 * unpublished outbox row, nothing pending or unacked on either consumer. Resolves true, or null if
 * that did not happen within the limit.
 */
export async function drain(pipe: Pipeline, limitMs: number, also?: Promise<unknown>): Promise<true | null> {
  let settled = !also;
  void also?.finally(() => (settled = true)).catch(() => undefined);
  const end = Date.now() + limitMs;
  while (Date.now() < end) {
    if (settled && backlogTotal(await pipe.backlog()) === 0) return true;
    await sleep(100);
  }
  return null;
}
