/**
 * npm run bench [-- --quick] [--runs=N] [--rates=100,300,…] [--step=S] [--backends=sqlite,postgresql]
 * orderflow's speed and cost on this machine, beside the ceilings of the same parts measured in
 * the same run: on SQLite and on PostgreSQL, each on one nats-server (R1 streams), then SQLite on a
 * three-node loopback cluster (R3 streams), with its JetStream publish+ack ceiling and the same
 * pipeline steps. Each figure comes with its spread: N whole runs (3 by default; `--quick`: one
 * short run, for CI), each on a fresh NATS server and database, summarized as median [min–max].
 * Loopback only; every step and every wait is bounded in time.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { defaultAuthDir, ensureNatsAuth } from '../src/nats/auth/identities.js';
import { TEST_PERMISSIONS } from '../src/nats/auth/permissions.js';
import { startNatsCluster } from '../src/nats/cluster.js';
import { startNatsServer } from '../src/nats/server-process.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { backendOf } from './db.js';
import { cannon, type HttpResult, postmasterPid, procStats, round, say, startScript, stopChild, treeCpuMs } from './lib.js';
import { ORDER, orderflowPart, sqliteUrl } from './orderflow.js';
import { summarize, table } from './summary.js';
import { judge, targetsTable } from './targets.js';

const flag = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const args = z
  .object({
    quick: z.boolean(),
    runs: z.coerce.number().int().min(1).max(10).optional(),
    rates: z.array(z.coerce.number().int().positive().max(20_000)).optional(),
    step: z.coerce.number().min(1).max(300).optional(),
    backends: z
      .array(z.enum(['sqlite', 'postgresql']))
      .min(1)
      .optional(),
  })
  .parse({
    quick: process.argv.includes('--quick'),
    runs: flag('runs'),
    rates: flag('rates')?.split(','),
    step: flag('step'),
    backends: flag('backends')?.split(','),
  });
/** Both by default; `--backends=sqlite` (or postgresql) measures one, for a quicker look: not committed. */
const BACKENDS = args.backends ?? ['sqlite', 'postgresql'];
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

async function oneRun(run: number): Promise<Record<string, unknown>> {
  const began = Date.now();
  const dir = join(ROOT, 'bench', 'tmp', `${began}-${run}`);
  mkdirSync(dir, { recursive: true });
  // NATS as `npm start` runs it: with the generated authorization, each process its own identity
  // (found in DATA_DIR), and the bench's own clients as a `bench` identity that may do anything.
  const auth = ensureNatsAuth(defaultAuthDir({ DATA_DIR: dir }), { extra: [{ kind: 'bench', permissions: TEST_PERMISSIONS }] });
  process.env.BENCH_NATS_SEED = join(auth.identitiesDir, 'bench.nk');
  const freshNats = (name: string) =>
    startNatsServer({ storeDir: join(dir, name), configFile: auth.serverConfig, watchParent: true, logFile: join(dir, `${name}.log`) });
  const nats = await freshNats('nats');
  const postgres = BACKENDS.includes('postgresql') ? await startPostgres() : null;
  const result: Record<string, unknown> = {};
  try {
    // ---- ceilings ------------------------------------------------------------------------------
    say('ceiling: NATS request/reply and JetStream publish+ack');
    const natsCeil = await startScript(join(ROOT, 'bench/ceilings/nats.ts'), [nats.url, String(FLAT_OUT_S * 500)]).firstLine;
    say('ceiling: bare Fastify POST');
    const bare = await httpCeiling('fastify-bare.ts', []);
    say('ceiling: minimal intake (Fastify + group-committed SQLite insert + JetStream publish)');
    const minimal = await httpCeiling('minimal-intake.ts', [nats.url, join(dir, 'minimal.db')]);
    say(`  minimal intake ${minimal.req_per_s} req/s, p99 ${minimal.p99_ms} ms`);
    let minimalPg: HttpResult | undefined;
    if (postgres) {
      say('ceiling: minimal intake on PostgreSQL (Fastify + one committed PostgreSQL insert + JetStream publish)');
      minimalPg = await httpCeiling('minimal-intake-pg.ts', [nats.url, await postgres.createDatabase('minimal')]);
      say(`  minimal intake on PostgreSQL ${minimalPg.req_per_s} req/s, p99 ${minimalPg.p99_ms} ms`);
    }
    result.ceilings = { ...natsCeil, fastify_bare_post: bare, minimal_intake: minimal, ...(minimalPg ? { minimal_intake_pg: minimalPg } : {}) };
    await nats.stop();

    // ---- orderflow on each backend, each on a fresh NATS server ----------------------------------
    // SQLite's figures stay at the top level (as in every earlier results file); PostgreSQL's,
    // the same shape, under `postgresql`.
    const partOptions = {
      dir,
      rates: RATES,
      stepSeconds,
      flatOutS: FLAT_OUT_S,
      drainLimitMs: DRAIN_LIMIT_MS,
      maxLagMs: MAX_LAG_MS,
      stopWhenNotSustained: !args.quick,
    };
    const onBackend = async (databaseUrl: string, ceiling: HttpResult, extra: { name: string; pid: () => number }[]) => {
      const server = await freshNats(`nats-${backendOf(databaseUrl)}`);
      const others = [{ name: 'nats-server', pid: () => server.pid }, ...extra];
      try {
        return await orderflowPart({
          ...partOptions,
          natsUrl: server.url,
          databaseUrl,
          ceiling,
          otherCpu: () => Object.fromEntries(others.map((x) => [x.name, treeCpuMs(x.pid())])),
          otherRss: () => Object.fromEntries(others.map((x) => [x.name, procStats(x.pid())?.peak_rss_mb ?? null])),
        });
      } finally {
        await server.stop();
      }
    };
    if (BACKENDS.includes('sqlite')) Object.assign(result, await onBackend(sqliteUrl(dir), minimal, []));
    if (postgres && minimalPg) {
      const pid = await postmasterPid(postgres.url());
      result.postgresql = await onBackend(await postgres.createDatabase('orderflow'), minimalPg, [{ name: 'postgres', pid: () => pid }]);
    }

    // ---- SQLite on a three-node cluster, every stream R3 ------------------------------------------
    if (BACKENDS.includes('sqlite')) {
      say('cluster: three nats-server nodes on loopback, streams R3');
      const cluster = await startNatsCluster({ dir: join(dir, 'cluster'), configFile: auth.serverConfig, watchParent: true });
      try {
        await cluster.waitForMetaLeader();
        say('cluster ceiling: NATS request/reply and JetStream publish+ack (R3)');
        const ceilings = await startScript(join(ROOT, 'bench/ceilings/nats.ts'), [cluster.urls, String(FLAT_OUT_S * 500), '3']).firstLine;
        const natsPids = () => cluster.nodes.flatMap((n) => (n.process ? [n.process.pid] : []));
        const r3 = await orderflowPart({
          ...partOptions,
          natsUrl: cluster.urls,
          replicas: 3,
          intake: false,
          databaseUrl: `file:${join(dir, 'orderflow-cluster.db')}`,
          ceiling: minimal,
          otherCpu: () => ({ 'nats-server': natsPids().reduce((sum, pid) => sum + treeCpuMs(pid), 0) }),
          // The largest node.
          otherRss: () => ({ 'nats-server': Math.max(0, ...natsPids().map((pid) => procStats(pid)?.peak_rss_mb ?? 0)) || null }),
        });
        if ('skipped' in r3) throw new Error(r3.skipped);
        result.cluster = {
          ceilings,
          ...r3,
          sustained_ratio_to_single_node: round(r3.max_sustained_per_s / Math.max(1, result.max_sustained_per_s as number), 2),
        };
      } finally {
        await cluster.stop();
      }
    }
  } finally {
    await nats.stop();
    await postgres?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  result.targets = judge(result);
  result.duration_s = round((Date.now() - began) / 1000, 0);
  return result;
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

/** quick (CI); full (the method we quote, with any number of runs); custom (other rates or steps: not committed). */
const MODE = args.quick ? 'quick' : args.rates || args.step || args.backends ? 'custom' : 'full';

async function main() {
  const began = Date.now();
  const result: Record<string, unknown> = {
    date: new Date().toISOString(),
    mode: MODE,
    machine: {
      cpus: cpus().length,
      cpu_model: cpus()[0]?.model,
      memory_gb: round(totalmem() / 2 ** 30, 1),
      node: process.version,
      nats_server: execSync('nats-server --version').toString().trim(),
    },
    commit: execSync('git rev-parse --short HEAD', { cwd: ROOT }).toString().trim(),
    method: {
      runs: RUNS,
      backends: BACKENDS,
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
  process.stdout.write(`\n${targetsTable(runs)}`);
  say(`results: ${file} (${result.duration_s} s)`);
}

await main();
