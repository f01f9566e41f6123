/**
 * orderflow as a user starts it, on one backend (the DATABASE_URL says which): `setup`, then web +
 * payments + activity + fulfillment + reconciler, measured three ways: the intake flat out (50
 * connections) with one web process, the same with two web processes (the connections spread
 * over both ports), then the whole pipeline under open-loop load, step by step.
 */
import { join } from 'node:path';
import { connect } from 'nats';
import { freePort, type Running, runCli, spawnCli } from '../test/helpers/processes.js';
import { Pipeline } from './backlog.js';
import { backendOf, openBenchDb } from './db.js';
import { benchNatsOptions, cannon, type HttpResult, procStats, round, say, sleep } from './lib.js';
import { drain, type Latency, pipelineStep, type Step } from './step.js';

export const ORDER = { customer_email: 'bench@example.com', amount: '12.50' };
const WORKERS = ['payments', 'activity', 'fulfillment', 'reconciler'];

export interface OrderflowPart {
  natsUrl: string;
  databaseUrl: string;
  /** DATA_DIR: NATS identities are found there; the load generator's ids files go there. */
  dir: string;
  /** The same run's minimal-intake ceiling on this backend: the intake is given as a share of it. */
  ceiling: HttpResult;
  /** CPU time (ms) so far of processes outside orderflow that serve it (nats-server, PostgreSQL). */
  otherCpu: () => Record<string, number>;
  otherRss: () => Record<string, number | null>;
  rates: number[];
  stepSeconds: (rate: number) => number;
  flatOutS: number;
  drainLimitMs: number;
  maxLagMs: number;
  /** Stop at the first step not sustained (the full method); quick mode runs every rate. */
  stopWhenNotSustained: boolean;
  /** NATS_STREAM_REPLICAS (3 on a cluster); 1 by default. */
  replicas?: number;
  /** Measure the intake flat out (with one and two web processes) before the steps; default true. */
  intake?: boolean;
}

export interface Intake extends HttpResult {
  connections: number;
  web_processes: number;
  ratio_to_minimal_intake: number;
}

export interface OrderflowResult {
  intake?: Intake;
  intake_two_web?: Intake;
  pipeline: Step[];
  max_sustained_per_s: number;
  peak_rss_mb: Record<string, number | null>;
}

/** Why a backend was not measured (orderflow refused it), or null when it runs. */
export type Skipped = { skipped: string };

export async function orderflowPart(o: OrderflowPart): Promise<OrderflowResult | Skipped> {
  const backend = backendOf(o.databaseUrl);
  const log = (s: string) => say(`[${backend}] ${s}`);
  const webPort = await freePort();
  const env = {
    NATS_URL: o.natsUrl,
    NATS_STREAM_REPLICAS: String(o.replicas ?? 1),
    PORT: String(webPort),
    DATA_DIR: o.dir,
    DATABASE_URL: o.databaseUrl,
    LOG_LEVEL: 'warn',
    ORDERFLOW_PRETTY: '0',
    NODE_ENV: 'production',
    // The bench offers thousands of orders a second from one address: the per-IP limits are off.
    RATE_LIMIT_ORDERS_PER_MIN: '0',
    RATE_LIMIT_OPERATOR_PER_MIN: '0',
  };
  log(`orderflow (R${o.replicas ?? 1}): setup, then web + payments + activity + fulfillment + reconciler`);
  const setup = await runCli(['setup'], env, 60_000);
  if (setup.code !== 0) {
    // Until this backend is supported, orderflow says so at its edge (the DATABASE_URL check): a
    // part not measured, with the reason. Any other failure of setup is a failure of the bench.
    const why = refusal(setup.stderr);
    if (why) return { skipped: `orderflow setup refused DATABASE_URL=${o.databaseUrl}: ${why}` };
    throw new Error(setup.stderr);
  }
  const procs: Running[] = [spawnCli('web', ['web'], env), ...WORKERS.map((w) => spawnCli(w, ['worker', w], env))];
  const db = openBenchDb(o.databaseUrl);
  const nc = await connect({ ...benchNatsOptions(o.natsUrl), name: 'bench' }).catch(async (err) => {
    await db.close();
    await Promise.all(procs.map((p) => p.stop('SIGTERM')));
    throw err;
  });
  try {
    try {
      await waitReady(`http://127.0.0.1:${webPort}/ready`, procs);
    } catch (err) {
      const why = refusal(procs.map((p) => p.output()).join('\n'));
      if (why) return { skipped: `orderflow refused DATABASE_URL=${o.databaseUrl}: ${why}` };
      throw err;
    }
    const pipe = new Pipeline(db, await nc.jetstreamManager());
    const url = `http://127.0.0.1:${webPort}/orders`;
    // One order first: a web app that is up but cannot take an order would answer the load fast.
    const probe = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(ORDER),
    });
    if (probe.status !== 201) {
      const why = refusal(procs.map((p) => p.output()).join('\n'));
      if (why) return { skipped: `orderflow refused DATABASE_URL=${o.databaseUrl}: ${why}` };
      throw new Error(
        `[${backend}] POST /orders answered ${probe.status} ${(await probe.text()).slice(0, 300)}; the web app's log:\n${procs[0]!.output().slice(-2000)}`,
      );
    }
    const cpuOf = () =>
      ({ ...Object.fromEntries(procs.map((p) => [p.name, procStats(p.child.pid!)?.cpu_ms ?? 0])), ...o.otherCpu() }) as Record<string, number>;
    const flatOut = async (urls: string[]): Promise<Intake> => {
      await cannon(urls, ORDER, { connections: 10, durationS: 1 }); // warm-up
      await drain(pipe, o.drainLimitMs);
      const r = await cannon(urls, ORDER, { connections: 50, durationS: o.flatOutS });
      const intake = { ...r, connections: 50, web_processes: urls.length, ratio_to_minimal_intake: round(r.ok_per_s / o.ceiling.ok_per_s, 2) };
      const failed = r.non_2xx || r.errors ? ` — ${r.non_2xx} non-2xx answers, ${r.errors} errors` : '';
      log(
        `  ${intake.ok_per_s} orders/s accepted, p99 ${intake.p99_ms} ms (${intake.ratio_to_minimal_intake} of the ceiling)${failed}; letting the pipeline drain`,
      );
      if ((await drain(pipe, o.drainLimitMs)) === null)
        throw new Error(`[${backend}] the pipeline did not drain ${o.drainLimitMs / 1000} s after the intake test: ${JSON.stringify(await pipe.backlog())}`);
      return intake;
    };

    let intake: Intake | undefined;
    let intake_two_web: Intake | undefined;
    if (o.intake ?? true) {
      log('orderflow intake: POST /orders, 50 connections, one web process');
      intake = await flatOut([url]);
      log('orderflow intake: POST /orders, 50 connections over two web processes');
      const port2 = await freePort();
      const web2 = spawnCli('web-2', ['web'], { ...env, PORT: String(port2) });
      try {
        await waitReady(`http://127.0.0.1:${port2}/ready`, [web2]);
        intake_two_web = await flatOut([url, `http://127.0.0.1:${port2}/orders`]);
      } finally {
        await web2.stop('SIGTERM');
      }
    } else {
      // As the intake test would: warm up, then start from an empty pipeline.
      await cannon(url, ORDER, { connections: 10, durationS: 1 });
      await drain(pipe, o.drainLimitMs);
    }

    const steps: Step[] = [];
    for (const rate of o.rates) {
      const step = await pipelineStep(
        rate,
        { db, pipe, url, dir: o.dir, cpuOf },
        { stepS: o.stepSeconds(rate), drainLimitMs: o.drainLimitMs, maxLagMs: o.maxLagMs },
      );
      steps.push(step);
      const l = (x: Latency | null) =>
        x ? `p50 ${x.whole.p50_ms} p99 ${x.whole.p99_ms} max ${x.whole.max_ms} (last third p99 ${x.last_third.p99_ms})` : 'refused';
      log(
        `  finished ${step.finished_per_s}/s, lag at end ${step.backlog_end.oldest_ms} ms (${step.backlog_end.total} items), drained in ${step.drained_in_s ?? '>limit'} s; ` +
          `POST ${l({ whole: step.http, last_third: step.http.last_third })} ms; e2e ${l(step.e2e_events_ms)} ms; POST→shipped ${l(step.post_to_shipped_ms)} ms; ` +
          `samples ${step.samples_pct_of_accepted}% of accepted; ${step.cpu_ms_per_order} CPU ms/order${step.sustained ? '' : ` — NOT SUSTAINED: ${step.not_sustained_because.join('; ')}`}`,
      );
      // The steps go on until one is not sustained, but always reach 300/s: the rate the single
      // node and the R3 cluster are compared at (issue 13).
      if (!step.sustained && o.stopWhenNotSustained && rate >= COMPARED_AT) break;
    }
    return {
      ...(intake ? { intake, intake_two_web } : {}),
      pipeline: steps,
      max_sustained_per_s: maxSustained(steps),
      peak_rss_mb: { ...Object.fromEntries(procs.map((p) => [p.name, procStats(p.child.pid!)?.peak_rss_mb ?? null])), ...o.otherRss() },
    };
  } finally {
    await nc.close();
    await db.close();
    await Promise.all(procs.map((p) => p.stop('SIGTERM')));
  }
}

/**
 * Until this backend is supported, orderflow says so in one line naming DATABASE_URL (its edge's
 * check, or its storage's): then the part is reported as not measured, with that line. Any other
 * failure is a failure of the bench.
 */
function refusal(output: string): string | undefined {
  return output
    .split('\n')
    .find((l) => /DATABASE_URL/.test(l))
    ?.trim();
}

/** Waits for the web app to be ready; fails at once if one of `procs` exits first. */
export async function waitReady(url: string, procs: Running[]) {
  // Two minutes: five processes start at once, each compiling TypeScript, on a shared machine.
  const end = Date.now() + 120_000;
  let last: string | null = 'no answer';
  while (Date.now() < end) {
    const gone = procs.find((p) => p.exit);
    if (gone) throw new Error(`${gone.name} exited (${gone.exit!.code ?? gone.exit!.signal}) before ${url} was ready:\n${gone.output().slice(-2000)}`);
    last = await fetch(url)
      .then(async (r) => (r.ok ? null : `${r.status} ${await r.text()}`))
      .catch((err: Error) => String((err.cause as { code?: string })?.code ?? err.message));
    if (last === null) return;
    await sleep(200);
  }
  throw new Error(`${url} did not become ready in 120 s (last answer: ${last}); ${procs[0]?.name}'s log:\n${procs[0]?.output().slice(-2000)}`);
}

/** Where each backend's part keeps its database: a file in the run's dir, or a fresh database on the run's server. */
export const sqliteUrl = (dir: string) => `file:${join(dir, 'orderflow.db')}`;

/** The rate every part is compared at (issues 12 and 13: 300/s offered). */
const COMPARED_AT = 300;

/** The highest rate below which every step was sustained (a lucky step past a failed one does not count). */
function maxSustained(steps: Step[]): number {
  const failed = steps.findIndex((s) => !s.sustained);
  return Math.max(0, ...(failed < 0 ? steps : steps.slice(0, failed)).map((s) => s.offered_per_s));
}
