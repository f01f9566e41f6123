/**
 * npm run bench [-- --quick] [--runs=N] [--rates=100,300,…] [--step=S]
 * orderflow's speed and cost on this machine, beside the ceilings of the same parts measured in
 * the same run: on one nats-server (R1 streams), then on a three-node loopback cluster (R3
 * streams), each with its JetStream publish+ack ceiling and the same pipeline steps. Each figure comes with its spread: N whole runs (3 by default; `--quick`: one
 * short run, for CI), each on a fresh NATS server and database, summarized as median [min–max].
 * Loopback only; every step and every wait is bounded in time.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { connect } from 'nats';
import { z } from 'zod';
import { defaultAuthDir, ensureNatsAuth } from '../src/nats/auth/identities.js';
import { TEST_PERMISSIONS } from '../src/nats/auth/permissions.js';
import { startNatsCluster } from '../src/nats/cluster.js';
import { startNatsServer } from '../src/nats/server-process.js';
import { freePort, runCli, spawnCli, type Running } from '../test/helpers/processes.js';
import { Pipeline } from './backlog.js';
import { benchNatsOptions, cannon, procStats, round, say, sleep, startScript, stopChild, type HttpResult } from './lib.js';
import { drain, pipelineStep, type Latency, type Step } from './step.js';
import { summarize, table } from './summary.js';

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
/** See StepLimits (bench/step.ts). */
const DRAIN_LIMIT_MS = args.quick ? 60_000 : 180_000;
const MAX_LAG_MS = 1000;
const ROOT = resolve(import.meta.dirname, '..');
const ORDER = { customer_email: 'bench@example.com', amount: '12.50' };

async function oneRun(run: number): Promise<Record<string, unknown>> {
  const began = Date.now();
  const dir = join(ROOT, 'bench', 'tmp', `${began}-${run}`);
  mkdirSync(dir, { recursive: true });
  // NATS as `npm start` runs it: with the generated authorization, each process its own identity
  // (found in DATA_DIR), and the bench's own clients as a `bench` identity that may do anything.
  const auth = ensureNatsAuth(defaultAuthDir({ DATA_DIR: dir }), { extra: [{ kind: 'bench', permissions: TEST_PERMISSIONS }] });
  process.env.BENCH_NATS_SEED = join(auth.identitiesDir, 'bench.nk');
  const result: Record<string, unknown> = {};
  try {
    const nats = await startNatsServer({ storeDir: join(dir, 'nats'), configFile: auth.serverConfig });
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
      Object.assign(result, await orderflowOn({ dir, db: 'orderflow.db', natsUrl: nats.url, natsPids: () => [nats.pid], replicas: 1, intakeCeiling: minimal }));
    } finally {
      await nats.stop();
    }

    // ---- the same on a three-node cluster, every stream R3 ----------------------------------------
    say('cluster: three nats-server nodes on loopback, streams R3');
    const cluster = await startNatsCluster({ dir: join(dir, 'cluster'), configFile: auth.serverConfig });
    try {
      await cluster.waitForMetaLeader();
      say('cluster ceiling: NATS request/reply and JetStream publish+ack (R3)');
      const ceilings = await startScript(join(ROOT, 'bench/ceilings/nats.ts'), [cluster.urls, String(FLAT_OUT_S * 500), '3']).firstLine;
      const natsPids = () => cluster.nodes.flatMap((n) => (n.process ? [n.process.pid] : []));
      const r3 = await orderflowOn({ dir, db: 'orderflow-cluster.db', natsUrl: cluster.urls, natsPids, replicas: 3 });
      result.cluster = { ceilings, ...r3, sustained_ratio_to_single_node: round(r3.max_sustained_per_s / Math.max(1, result.max_sustained_per_s as number), 2) };
    } finally {
      await cluster.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  result.duration_s = round((Date.now() - began) / 1000, 0);
  return result;
}

interface OrderflowResult {
  intake?: Record<string, unknown>;
  pipeline: Step[];
  max_sustained_per_s: number;
  peak_rss_mb: Record<string, number | null>;
}

/**
 * orderflow as a user starts it (setup, then web + workers as processes) on the NATS at
 * `natsUrl` (one server or a cluster's comma list), its intake flat out if `intakeCeiling` is
 * given, then the pipeline steps. `natsPids`: every nats-server process, whose CPU and RSS count.
 */
async function orderflowOn(o: { dir: string; db: string; natsUrl: string; natsPids: () => number[]; replicas: number; intakeCeiling?: HttpResult }): Promise<OrderflowResult> {
  const result: Partial<OrderflowResult> = {};
  const procs: Running[] = [];
  const webPort = await freePort();
  const dbFile = join(o.dir, o.db);
  const env = {
    NATS_URL: o.natsUrl,
    NATS_STREAM_REPLICAS: String(o.replicas),
    PORT: String(webPort),
    DATA_DIR: o.dir,
    DATABASE_URL: `file:${dbFile}`,
    LOG_LEVEL: 'warn',
    ORDERFLOW_PRETTY: '0',
    NODE_ENV: 'production',
    // The bench offers thousands of orders a second from one address: the per-IP limits are off.
    RATE_LIMIT_ORDERS_PER_MIN: '0',
    RATE_LIMIT_OPERATOR_PER_MIN: '0',
  };
  try {
    say(`orderflow (R${o.replicas}): setup, then web + payments + activity + fulfillment + reconciler`);
    const setup = await runCli(['setup'], env, 60_000);
    if (setup.code !== 0) throw new Error(setup.stderr);
    for (const name of ['web', 'payments', 'activity', 'fulfillment', 'reconciler']) procs.push(spawnCli(name, name === 'web' ? ['web'] : ['worker', name], env));
    await waitReady(`http://127.0.0.1:${webPort}/ready`);
    const db = new Database(dbFile, { readonly: true });
    const nc = await connect({ ...benchNatsOptions(o.natsUrl), name: 'bench' });
    const pipe = new Pipeline(db, await nc.jetstreamManager());
    const url = `http://127.0.0.1:${webPort}/orders`;
    const natsCpu = () => o.natsPids().reduce((sum, pid) => sum + (procStats(pid)?.cpu_ms ?? 0), 0);
    const cpuOf = () => Object.fromEntries([...procs.map((p) => [p.name, procStats(p.child.pid!)?.cpu_ms ?? 0]), ['nats-server', natsCpu()]]) as Record<string, number>;

    try {
      await cannon(url, ORDER, { connections: 10, durationS: 1 }); // warm-up
      await drain(pipe, DRAIN_LIMIT_MS);
      if (o.intakeCeiling) {
        say('orderflow intake: POST /orders, 50 connections');
        const intake = await cannon(url, ORDER, { connections: 50, durationS: FLAT_OUT_S });
        result.intake = { ...intake, connections: 50, ratio_to_minimal_intake: round(intake.req_per_s / o.intakeCeiling.req_per_s, 2) };
        say(`  ${intake.req_per_s} req/s, p99 ${intake.p99_ms} ms (${round(intake.req_per_s / o.intakeCeiling.req_per_s, 2)} of the ceiling); letting the pipeline drain`);
        if ((await drain(pipe, DRAIN_LIMIT_MS)) === null) throw new Error('the pipeline did not drain after the intake test');
      }

      const steps: Step[] = [];
      for (const rate of RATES) {
        const step = await pipelineStep(rate, { db, pipe, url, dir: o.dir, cpuOf }, { stepS: stepSeconds(rate), drainLimitMs: DRAIN_LIMIT_MS, maxLagMs: MAX_LAG_MS });
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
      const natsRss = Math.max(0, ...o.natsPids().map((pid) => procStats(pid)?.peak_rss_mb ?? 0));
      result.peak_rss_mb = Object.fromEntries([...procs.map((p) => [p.name, procStats(p.child.pid!)?.peak_rss_mb ?? null]), ['nats-server', natsRss || null]]);
    } finally {
      await nc.close();
      db.close();
    }
  } finally {
    await Promise.all(procs.map((p) => p.stop('SIGTERM')));
  }
  return result as OrderflowResult;
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

async function waitReady(url: string) {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    if (await fetch(url).then((r) => r.ok).catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`${url} did not become ready`);
}

/** quick (CI); full (the method we quote, with any number of runs); custom (other rates or steps: not committed). */
const MODE = args.quick ? 'quick' : args.rates || args.step ? 'custom' : 'full';

async function main() {
  const began = Date.now();
  const result: Record<string, unknown> = {
    date: new Date().toISOString(),
    mode: MODE,
    machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model, memory_gb: round(totalmem() / 2 ** 30, 1), node: process.version, nats_server: execSync('nats-server --version').toString().trim(), load_average_at_start: loadavg().map((l) => round(l, 1)) },
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
  // On a shared machine the figures are only as good as the machine was quiet: say how busy it was.
  Object.assign(result, { duration_s: round((Date.now() - began) / 1000, 0), load_average_at_end: loadavg().map((l) => round(l, 1)), summary, runs });
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, 'bench/results', `${String(result.date).replace(/[:.]/g, '-')}${MODE === 'full' ? '' : `-${MODE}`}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(ROOT, 'bench/results', MODE === 'full' ? 'latest.json' : `latest-${MODE}.json`), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(table(summary, RUNS));
  say(`results: ${file} (${result.duration_s} s)`);
}

await main();
