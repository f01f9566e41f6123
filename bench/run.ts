/**
 * npm run bench [-- --quick] [--runs=N] [--rates=100,300,…] [--step=S]
 * orderflow's speed and cost on this machine, beside the ceilings of the same parts measured in
 * the same run. Each figure comes with its spread: N whole runs (3 by default; `--quick`: one
 * short run, for CI), each on a fresh NATS server and database, summarized as median [min–max].
 * Loopback only; every step and every wait is bounded in time.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { connect } from 'nats';
import { z } from 'zod';
import { fromSqlTime, sqlTime } from '../src/db/sql.js';
import { OrderEvents } from '../src/events/contracts.js';
import { startNatsServer } from '../src/nats/server-process.js';
import { ACTIVITY_CONSUMER } from '../src/nats/topology.js';
import { freePort, runCli, spawnCli, type Running } from '../test/helpers/processes.js';
import { backlogOldest, backlogTotal, Pipeline, STAGES, type Backlog } from './backlog.js';
import { cannon, openLoop, percentile, procStats, round, startScript, stopChild, type HttpResult, type LatencyFigures, type OpenLoopResult } from './lib.js';
import { show, summarize, type Summary } from './summary.js';

const flag = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const args = z
  .object({
    quick: z.boolean(),
    runs: z.coerce.number().int().min(1).max(10).optional(),
    rates: z.array(z.coerce.number().int().positive().max(20_000)).optional(),
    step: z.coerce.number().min(1).max(300).optional(),
  })
  .parse({ quick: process.argv.includes('--quick'), runs: flag('runs'), rates: flag('rates')?.split(','), step: flag('step') });
const RUNS = args.runs ?? (args.quick ? 1 : 3);
const RATES = args.rates ?? (args.quick ? [100, 300] : [100, 300, 600, 1000, 1500, 2000]);
/** A step long enough to reach the steady state: 30 s, 60 s at the top rates (`--quick`: 3 s). */
const stepSeconds = (rate: number) => args.step ?? (args.quick ? 3 : rate >= 1500 ? 60 : 30);
/** Ceilings and the closed-loop intake measure one part flat out; they settle in seconds. */
const FLAT_OUT_S = args.quick ? 2 : 8;
/** How long a step's backlog may take to drain before the step counts as not drained. */
const DRAIN_LIMIT_MS = args.quick ? 60_000 : 180_000;
/** The slowest stage may be this far behind at a step's end for the step to count as sustained. */
const MAX_LAG_MS = 1000;
const ROOT = resolve(import.meta.dirname, '..');
const say = (s: string) => process.stderr.write(`[bench] ${s}\n`);
const ORDER = { customer_email: 'bench@example.com', amount: '12.50' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Latency {
  whole: LatencyFigures;
  last_third: LatencyFigures;
}

interface Step {
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

async function oneRun(run: number): Promise<Record<string, unknown>> {
  const began = Date.now();
  const dir = join(ROOT, 'bench', 'tmp', `${began}-${run}`);
  mkdirSync(dir, { recursive: true });
  const nats = await startNatsServer({ storeDir: join(dir, 'nats') });
  const result: Record<string, unknown> = {};
  const procs: Running[] = [];
  try {
    // ---- ceilings ------------------------------------------------------------------------------
    say('ceiling: NATS request/reply and JetStream publish+ack');
    const natsCeil = await startScript(join(ROOT, 'bench/ceilings/nats.ts'), [nats.url, String(FLAT_OUT_S * 500)]).firstLine;
    say('ceiling: bare Fastify POST');
    const bare = await httpCeiling('fastify-bare.ts', []);
    say('ceiling: minimal intake (Fastify + group-committed SQLite insert + JetStream publish)');
    const minimal = await httpCeiling('minimal-intake.ts', [nats.url, join(dir, 'minimal.db')]);
    result.ceilings = { ...natsCeil, fastify_bare_post: bare, minimal_intake: minimal };
    say(`  minimal intake ${minimal.req_per_s} req/s, p99 ${minimal.p99_ms} ms`);

    // ---- orderflow, as a user starts it -----------------------------------------------------------
    const webPort = await freePort();
    const env = {
      NATS_URL: nats.url,
      PORT: String(webPort),
      DATA_DIR: dir,
      DATABASE_URL: `file:${join(dir, 'orderflow.db')}`,
      LOG_LEVEL: 'warn',
      ORDERFLOW_PRETTY: '0',
      NODE_ENV: 'production',
    };
    say('orderflow: setup, then web + payments + activity + fulfillment + reconciler');
    const setup = await runCli(['setup'], env);
    if (setup.code !== 0) throw new Error(setup.stderr);
    for (const name of ['web', 'payments', 'activity', 'fulfillment', 'reconciler']) procs.push(spawnCli(name, name === 'web' ? ['web'] : ['worker', name], env));
    await waitReady(`http://127.0.0.1:${webPort}/ready`);
    const db = new Database(join(dir, 'orderflow.db'), { readonly: true });
    const nc = await connect({ servers: nats.url, name: 'bench' });
    const pipe = new Pipeline(db, await nc.jetstreamManager());
    const url = `http://127.0.0.1:${webPort}/orders`;
    const cpuOf = () => Object.fromEntries([...procs.map((p) => [p.name, procStats(p.child.pid!)?.cpu_ms ?? 0]), ['nats-server', procStats(nats.child.pid!)?.cpu_ms ?? 0]]) as Record<string, number>;

    try {
      say('orderflow intake: POST /orders, 50 connections');
      await cannon(url, ORDER, { connections: 10, durationS: 1 }); // warm-up
      await drain(pipe, DRAIN_LIMIT_MS);
      const intake = await cannon(url, ORDER, { connections: 50, durationS: FLAT_OUT_S });
      result.intake = { ...intake, connections: 50, ratio_to_minimal_intake: round(intake.req_per_s / minimal.req_per_s, 2) };
      say(`  ${intake.req_per_s} req/s, p99 ${intake.p99_ms} ms (${round(intake.req_per_s / minimal.req_per_s, 2)} of the ceiling); letting the pipeline drain`);
      if ((await drain(pipe, DRAIN_LIMIT_MS)) === null) throw new Error('the pipeline did not drain after the intake test');

      const steps: Step[] = [];
      for (const rate of RATES) {
        const step = await pipelineStep(rate, { db, pipe, url, dir, cpuOf });
        steps.push(step);
        const l = (x: Latency | null) => (x ? `p50 ${x.whole.p50_ms} p99 ${x.whole.p99_ms} max ${x.whole.max_ms} (last third p99 ${x.last_third.p99_ms})` : 'refused');
        say(
          `  finished ${step.finished_per_s}/s, lag at end ${step.backlog_end.oldest_ms} ms (${step.backlog_end.total} items), drained in ${step.drained_in_s ?? '>limit'} s; ` +
            `POST ${l({ whole: step.http, last_third: step.http.last_third })} ms; e2e ${l(step.e2e_events_ms)} ms; POST→shipped ${l(step.post_to_shipped_ms)} ms; ` +
            `samples ${step.samples_pct_of_accepted}% of accepted; ${step.cpu_ms_per_order} CPU ms/order${step.sustained ? '' : ` — NOT SUSTAINED: ${step.not_sustained_because.join('; ')}`}`,
        );
        if (!step.sustained && !args.quick) break;
      }
      result.pipeline = steps;
      result.max_sustained_per_s = Math.max(0, ...steps.filter((s) => s.sustained).map((s) => s.offered_per_s));
      result.peak_rss_mb = Object.fromEntries([...procs.map((p) => [p.name, procStats(p.child.pid!)?.peak_rss_mb ?? null]), ['nats-server', procStats(nats.child.pid!)?.peak_rss_mb ?? null]]);
    } finally {
      await nc.close();
      db.close();
    }
  } finally {
    await Promise.all(procs.map((p) => p.stop('SIGTERM')));
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  result.duration_s = round((Date.now() - began) / 1000, 0);
  return result;
}

interface StepContext {
  db: Database.Database;
  pipe: Pipeline;
  url: string;
  dir: string;
  cpuOf: () => Record<string, number>;
}

async function pipelineStep(rate: number, { db, pipe, url, dir, cpuOf }: StepContext): Promise<Step> {
  const stepS = stepSeconds(rate);
  say(`pipeline: ${rate} orders/s offered for ${stepS} s`);
  const idsFile = join(dir, `ids-${rate}.csv`);
  const lastActivityRow = (db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM nats_activities').get() as { id: number }).id;
  const createdFrom = new Date();
  const finishedBefore = pipe.finished();
  const cpuBefore = cpuOf();
  const load = openLoop(url, rate, stepS, idsFile);
  const started = await load.started;
  const sent = await load.sent;
  // The step's end: what each stage has not done yet.
  const finishedAtEnd = pipe.finished();
  const stages = await pipe.backlog();
  const web_http = { pending: sent.inflight, oldest_ms: sent.oldest_inflight_ms };
  const backlog_end = { web_http, ...stages, total: backlogTotal(stages) + web_http.pending, oldest_ms: Math.max(web_http.oldest_ms, backlogOldest(stages)) };
  const endedAt = Date.now();
  const drained = await drain(pipe, DRAIN_LIMIT_MS, load.result);
  const drained_in_s = drained === null ? null : round((Date.now() - endedAt) / 1000, 1);
  const cpuAfter = cpuOf();
  const http = await load.result;

  // Every accepted order, followed to shipped: the client's send time, the events' timestamps, shipped_at.
  const accepted = readFileSync(idsFile, 'utf8').split('\n').filter(Boolean).map((l) => ({ id: l.split(',')[0]!, sent: Number(l.split(',')[1]) }));
  const shippedAt = new Map(
    (db.prepare('SELECT id, shipped_at FROM orders WHERE created_at >= ?').all(sqlTime(createdFrom)) as { id: string; shipped_at: string | null }[]).map((r) => [r.id, fromSqlTime(r.shipped_at)?.getTime()]),
  );
  const events = db
    .prepare('SELECT order_id, subject, occurred_at FROM nats_activities WHERE id > ? AND consumer = ? AND subject IN (?, ?)')
    .all(lastActivityRow, ACTIVITY_CONSUMER.config.durable_name, OrderEvents.created.subject, OrderEvents.shipped.subject) as { order_id: string; subject: string; occurred_at: string }[];
  const createdEvent = new Map<string, number>();
  const shippedEvent = new Map<string, number>();
  for (const e of events) (e.subject === OrderEvents.created.subject ? createdEvent : shippedEvent).set(e.order_id, Date.parse(e.occurred_at));
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
  const latency = (l: { whole: number[]; last_third: number[] }): Latency | null => (complete ? { whole: figures(l.whole), last_third: figures(l.last_third) } : null);

  const cpu = Object.fromEntries(Object.keys(cpuAfter).map((k) => [k, cpuAfter[k]! - cpuBefore[k]!]));
  const cpuTotal = Object.values(cpu).reduce((a, b) => a + b, 0);
  const perOrder = (ms: number) => round(ms / Math.max(1, acceptedN), 2);
  const finished_per_s = round((finishedAtEnd - finishedBefore) / sent.send_seconds, 0);

  const why: string[] = [];
  if (http.errors || http.non_2xx) why.push(`${http.errors} errors, ${http.non_2xx} non-2xx answers`);
  if (http.sent_per_s < 0.95 * rate) why.push(`the load generator sent only ${http.sent_per_s}/s`);
  if (!complete) why.push(`only ${samples} of ${acceptedN} accepted orders have a latency sample`);
  if (finished_per_s < 0.9 * rate) why.push(`finished ${finished_per_s}/s during the step`);
  if (!(backlog_end.oldest_ms <= MAX_LAG_MS)) {
    const slowest = (['web_http', ...STAGES] as const).reduce((a, b) => (backlog_end[b].oldest_ms > backlog_end[a].oldest_ms ? b : a));
    why.push(`${slowest} ${backlog_end.oldest_ms} ms behind at the step's end`);
  }
  if (drained === null) why.push(`not drained ${DRAIN_LIMIT_MS / 1000} s after the step`);
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

async function httpCeiling(script: string, scriptArgs: string[]): Promise<HttpResult> {
  const s = startScript(join(ROOT, 'bench/ceilings', script), scriptArgs);
  try {
    const { ready } = (await s.firstLine) as { ready: number };
    const url = `http://127.0.0.1:${ready}/orders`;
    await cannon(url, ORDER, { connections: 10, durationS: 1 });
    return await cannon(url, ORDER, { connections: 50, durationS: FLAT_OUT_S });
  } finally {
    await stopChild(s.child);
  }
}

/**
 * Waits until every stage has nothing left (and `also`, if given, has settled): no open order, no
 * unpublished outbox row, nothing pending or unacked on either consumer. Resolves true, or null if
 * that did not happen within the limit.
 */
async function drain(pipe: Pipeline, limitMs: number, also?: Promise<unknown>): Promise<true | null> {
  let settled = !also;
  void also?.finally(() => (settled = true)).catch(() => undefined);
  const end = Date.now() + limitMs;
  while (Date.now() < end) {
    if (settled && backlogTotal(await pipe.backlog()) === 0) return true;
    await sleep(100);
  }
  return null;
}

async function waitReady(url: string) {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    if (await fetch(url).then((r) => r.ok).catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`${url} did not become ready`);
}

function table(s: Summary, runs: number): string {
  const f = (key: string, unit = '') => `${show(s, key)}${unit}`;
  const lat = (key: string) => `p50 ${f(`${key}.p50_ms`)}, p99 ${f(`${key}.p99_ms`)}, max ${f(`${key}.max_ms`)} ms`;
  const rates = [...new Set(Object.keys(s).filter((k) => k.startsWith('pipeline@')).map((k) => Number(k.slice(9).split('.')[0])))].sort((a, b) => a - b);
  const rows: string[][] = [
    ['measure', runs > 1 ? `median [min–max] of ${runs} runs` : 'figure (one run)'],
    ['NATS request/reply (ceiling)', `${f('ceilings.reqreply.ops_per_s', '/s')}, p50 ${f('ceilings.reqreply.p50_ms')} ms, p99 ${f('ceilings.reqreply.p99_ms')} ms`],
    ['JetStream publish + ack (ceiling)', `${f('ceilings.jspublish.ops_per_s', '/s')}, p50 ${f('ceilings.jspublish.p50_ms')} ms, p99 ${f('ceilings.jspublish.p99_ms')} ms`],
    ['bare Fastify POST (ceiling)', `${f('ceilings.fastify_bare_post.req_per_s', '/s')}, p99 ${f('ceilings.fastify_bare_post.p99_ms')} ms`],
    ['minimal intake, group commit (ceiling)', `${f('ceilings.minimal_intake.req_per_s', '/s')}, p50 ${f('ceilings.minimal_intake.p50_ms')} ms, p99 ${f('ceilings.minimal_intake.p99_ms')} ms`],
    ['orderflow intake, 50 conns', `${f('intake.req_per_s', '/s')}, p50 ${f('intake.p50_ms')} ms, p99 ${f('intake.p99_ms')} ms; ratio to the ceiling ${f('intake.ratio_to_minimal_intake')}`],
    ...rates.flatMap((r) => {
      const k = `pipeline@${r}`;
      return [
        [`@${r}/s offered`, `reached in ${s[`${k}.sustained`]?.n ?? 0} of ${runs} runs, sustained in ${s[`${k}.sustained`]?.sum ?? 0}; step ${f(`${k}.step_s`)} s; finished ${f(`${k}.finished_per_s`, '/s')} during the step; drained ${f(`${k}.drained_in_s`)} s after`],
        [`@${r}/s: lag at the end`, `slowest stage ${f(`${k}.backlog_end.oldest_ms`)} ms behind; ${f(`${k}.backlog_end.total`)} items unfinished (web ${f(`${k}.backlog_end.web_http.pending`)}, activity ${f(`${k}.backlog_end.activity.pending`)}, jobs ${f(`${k}.backlog_end.fulfillment_jobs.pending`)}, outbox ${f(`${k}.backlog_end.outbox.pending`)}, orders ${f(`${k}.backlog_end.orders.pending`)})`],
        [`@${r}/s: POST`, `${lat(`${k}.http`)}; last third ${lat(`${k}.http.last_third`)}`],
        [`@${r}/s: created → shipped events`, `${lat(`${k}.e2e_events_ms.whole`)}; last third ${lat(`${k}.e2e_events_ms.last_third`)}`],
        [`@${r}/s: POST → shipped_at`, `${lat(`${k}.post_to_shipped_ms.whole`)}; last third ${lat(`${k}.post_to_shipped_ms.last_third`)}`],
        [`@${r}/s: samples, CPU`, `${f(`${k}.samples_pct_of_accepted`, '%')} of accepted orders sampled; ${f(`${k}.cpu_ms_per_order`)} CPU ms/order until drained (web ${f(`${k}.cpu_ms_per_order_by_process.web`)})`],
      ];
    }),
    ['max sustained pipeline', f('max_sustained_per_s', ' orders/s')],
    ['peak RSS (MB)', ['web', 'payments', 'activity', 'fulfillment', 'reconciler', 'nats-server'].map((p) => `${p} ${f(`peak_rss_mb.${p}`)}`).join(', ')],
  ];
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return `${rows.map((row, j) => `| ${row.map((cell, i) => cell.padEnd(w[i]!)).join(' | ')} |${j === 0 ? `\n|${w.map((n) => '-'.repeat(n + 2)).join('|')}|` : ''}`).join('\n')}\n`;
}

/** quick (CI); full (the method we quote, with any number of runs); custom (other rates or steps: not committed). */
const MODE = args.quick ? 'quick' : args.rates || args.step ? 'custom' : 'full';

async function main() {
  const began = Date.now();
  const result: Record<string, unknown> = {
    date: new Date().toISOString(),
    mode: MODE,
    machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model, memory_gb: round(totalmem() / 2 ** 30, 1), node: process.version, nats_server: execSync('nats-server --version').toString().trim() },
    commit: execSync('git rev-parse --short HEAD', { cwd: ROOT }).toString().trim(),
    method: {
      runs: RUNS,
      rates: RATES,
      step_seconds: Object.fromEntries(RATES.map((r) => [r, stepSeconds(r)])),
      flat_out_seconds: FLAT_OUT_S,
      sustained_when: `no errors, every accepted order sampled, ≥ 90% of the offered rate finished during the step, no stage more than ${MAX_LAG_MS} ms behind at its end, drained within ${DRAIN_LIMIT_MS / 1000} s`,
    },
  };
  const runs = [];
  for (let i = 0; i < RUNS; i++) {
    say(`run ${i + 1} of ${RUNS}`);
    runs.push(await oneRun(i));
  }
  const summary = summarize(runs);
  Object.assign(result, { duration_s: round((Date.now() - began) / 1000, 0), summary, runs });
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, 'bench/results', `${String(result.date).replace(/[:.]/g, '-')}${MODE === 'full' ? '' : `-${MODE}`}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(ROOT, 'bench/results', MODE === 'full' ? 'latest.json' : `latest-${MODE}.json`), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(table(summary, RUNS));
  say(`results: ${file} (${result.duration_s} s)`);
}

await main();
