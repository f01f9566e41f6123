/**
 * npm run bench [-- --quick]
 * orderflow's speed and cost on this machine, beside the raw ceilings of the same parts measured
 * in the same run. Loopback only; every step is bounded in time.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { sqlTime } from '../src/db/sql.js';
import { startNatsServer } from '../src/nats/server-process.js';
import { freePort, runCli, spawnCli, type Running } from '../test/helpers/processes.js';
import { cannon, openLoop, percentile, procStats, round, startScript, stopChild, type HttpResult } from './lib.js';

const args = z
  .object({ quick: z.boolean(), rates: z.array(z.number().int().positive()).optional() })
  .parse({
    quick: process.argv.includes('--quick'),
    rates: process.argv.find((a) => a.startsWith('--rates='))?.slice(8).split(',').map(Number),
  });
const STEP_S = args.quick ? 2 : 8;
const RATES = args.rates ?? (args.quick ? [100, 300] : [100, 200, 300, 400, 600, 1000, 1500, 2000]);
const ROOT = resolve(import.meta.dirname, '..');
const dir = join(ROOT, 'bench', 'tmp', String(Date.now()));
mkdirSync(dir, { recursive: true });
const say = (s: string) => process.stderr.write(`[bench] ${s}\n`);
const ORDER = { customer_email: 'bench@example.com', amount: '12.50' };

async function main() {
  const nats = await startNatsServer({ storeDir: join(dir, 'nats') });
  const result: Record<string, unknown> = {
    date: new Date().toISOString(),
    mode: args.quick ? 'quick' : 'full',
    machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model, memory_gb: round(totalmem() / 2 ** 30, 1), node: process.version, nats_server: execSync('nats-server --version').toString().trim() },
    commit: execSync('git rev-parse --short HEAD', { cwd: ROOT }).toString().trim(),
    step_seconds: STEP_S,
  };
  const procs: Running[] = [];
  try {
    // ---- ceilings ------------------------------------------------------------------------------
    say('ceiling: NATS request/reply and JetStream publish+ack');
    const natsCeil = await startScript(join(ROOT, 'bench/ceilings/nats.ts'), [nats.url, String(STEP_S * 500)]).firstLine;
    say('ceiling: bare Fastify POST');
    const bare = await httpCeiling('fastify-bare.ts', []);
    say('ceiling: minimal intake (Fastify + SQLite insert + JetStream publish)');
    const minimal = await httpCeiling('minimal-intake.ts', [nats.url, join(dir, 'minimal.db')]);
    result.ceilings = { ...natsCeil, fastify_bare_post: bare, minimal_intake: minimal };

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
    const url = `http://127.0.0.1:${webPort}/orders`;
    const cpuOf = () => Object.fromEntries([...procs.map((p) => [p.name, procStats(p.child.pid!)?.cpu_ms ?? 0]), ['nats-server', procStats(nats.child.pid!)?.cpu_ms ?? 0]]);

    say('orderflow intake: POST /orders, 50 connections');
    await cannon(url, ORDER, { connections: 10, durationS: 1 }); // warm-up
    await drain(db);
    const intake = await cannon(url, ORDER, { connections: 50, durationS: STEP_S });
    result.intake = { ...intake, connections: 50, ratio_to_minimal_intake: round(intake.req_per_s / minimal.req_per_s, 2) };
    say(`  ${intake.req_per_s} req/s, p99 ${intake.p99_ms} ms; letting the pipeline drain`);
    await drain(db, 120_000);

    const steps = [];
    for (const rate of RATES) {
      say(`pipeline: ${rate} orders/s offered for ${STEP_S} s`);
      const before = counts(db);
      const cpuBefore = cpuOf();
      const t0 = new Date();
      const load = await openLoop(url, rate, STEP_S);
      const t1 = new Date();
      const atEnd = counts(db);
      const cpuAfter = cpuOf();
      const drained = await drain(db, 60_000);
      await new Promise((r) => setTimeout(r, 300)); // the activity worker records the last events a moment later
      const lat = e2eLatencies(db, t0, t1);
      const accepted = load.answered - load.non_2xx;
      const cpu = Object.fromEntries(Object.keys(cpuAfter).map((k) => [k, cpuAfter[k]! - cpuBefore[k]!]));
      const cpuTotal = Object.values(cpu).reduce((a, b) => a + b, 0);
      const step = {
        offered_per_s: rate,
        accepted_per_s: round(accepted / STEP_S, 0),
        finished_per_s: round((atEnd.final - before.final) / STEP_S, 0),
        backlog_start: before.open,
        backlog_end: atEnd.open,
        drained_in_s: drained,
        http: load,
        e2e_ms: { p50: round(percentile(lat, 50), 1), p99: round(percentile(lat, 99), 1), max: round(lat.at(-1) ?? NaN, 1), samples: lat.length },
        cpu_ms_per_order: round(cpuTotal / Math.max(1, accepted), 2),
        cpu_ms_by_process: cpu,
      };
      // Flat backlog: the pipeline finished (almost) what it was offered, and what was left at the end is under a second's worth.
      const sustained = load.errors === 0 && load.non_2xx === 0 && step.finished_per_s >= 0.9 * rate && atEnd.open <= Math.max(50, rate);
      steps.push({ ...step, sustained });
      say(`  finished ${step.finished_per_s}/s, backlog ${step.backlog_start} → ${step.backlog_end}, e2e p50 ${step.e2e_ms.p50} ms p99 ${step.e2e_ms.p99} ms, ${step.cpu_ms_per_order} CPU ms/order${sustained ? '' : ' (not sustained)'}`);
      if (!sustained && !args.quick) break;
    }
    result.pipeline = steps;
    result.max_sustained_per_s = Math.max(0, ...steps.filter((s) => s.sustained).map((s) => s.offered_per_s));
    result.peak_rss_mb = Object.fromEntries([...procs.map((p) => [p.name, procStats(p.child.pid!)?.peak_rss_mb ?? null]), ['nats-server', procStats(nats.child.pid!)?.peak_rss_mb ?? null]]);
    db.close();
  } finally {
    await Promise.all(procs.map((p) => p.stop('SIGTERM')));
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, 'bench/results', `${String(result.date).replace(/[:.]/g, '-')}${args.quick ? '-quick' : ''}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(ROOT, 'bench/results', args.quick ? 'latest-quick.json' : 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(table(result));
  say(`results: ${file}`);
}

async function httpCeiling(script: string, scriptArgs: string[]): Promise<HttpResult> {
  const s = startScript(join(ROOT, 'bench/ceilings', script), scriptArgs);
  try {
    const { ready } = (await s.firstLine) as { ready: number };
    const url = `http://127.0.0.1:${ready}/orders`;
    await cannon(url, ORDER, { connections: 10, durationS: 1 });
    return await cannon(url, ORDER, { connections: 50, durationS: STEP_S });
  } finally {
    await stopChild(s.child);
  }
}

/**
 * End to end, from the events' own timestamps: orders.created's occurred_at to orders.shipped's,
 * per order created in [t0, t1), as the activity worker recorded them.
 */
function e2eLatencies(db: Database.Database, t0: Date, t1: Date): number[] {
  const rows = db
    .prepare(
      `SELECT c.occurred_at AS created, s.occurred_at AS shipped
       FROM nats_activities c JOIN nats_activities s ON s.order_id = c.order_id AND s.event_type = 'orders.shipped' AND s.consumer = c.consumer
       WHERE c.event_type = 'orders.created' AND c.consumer = 'activity' AND c.occurred_at >= ? AND c.occurred_at < ?`,
    )
    .all(sqlTime(t0), sqlTime(t1)) as { created: string; shipped: string }[];
  return rows.map((r) => Date.parse(r.shipped) - Date.parse(r.created)).sort((a, b) => a - b);
}

function counts(db: Database.Database): { final: number; open: number } {
  const r = db.prepare("SELECT SUM(status IN ('shipped','payment_declined')) AS final, SUM(status NOT IN ('shipped','payment_declined')) AS open FROM orders").get() as { final: number | null; open: number | null };
  return { final: r.final ?? 0, open: r.open ?? 0 };
}

/** Waits until no order is left unfinished; returns how long that took (s), or null if it did not within the limit. */
async function drain(db: Database.Database, limitMs = 30_000): Promise<number | null> {
  const start = Date.now();
  while (Date.now() - start < limitMs) {
    if (counts(db).open === 0) return round((Date.now() - start) / 1000, 1);
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}

async function waitReady(url: string) {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    if (await fetch(url).then((r) => r.ok).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not become ready`);
}

function table(r: Record<string, unknown>): string {
  const c = r.ceilings as { reqreply: { ops_per_s: number; p50_ms: number; p99_ms: number }; jspublish: { ops_per_s: number; p50_ms: number; p99_ms: number }; fastify_bare_post: HttpResult; minimal_intake: HttpResult };
  const intake = r.intake as HttpResult & { ratio_to_minimal_intake: number };
  const steps = r.pipeline as { offered_per_s: number; finished_per_s: number; backlog_start: number; backlog_end: number; e2e_ms: { p50: number; p99: number; max: number }; cpu_ms_per_order: number; sustained: boolean }[];
  const rows: string[][] = [
    ['measure', 'figure', 'ceiling', 'ratio'],
    ['NATS request/reply (ceiling)', `${c.reqreply.ops_per_s}/s p50 ${c.reqreply.p50_ms} ms p99 ${c.reqreply.p99_ms} ms`, '', ''],
    ['JetStream publish + ack (ceiling)', `${c.jspublish.ops_per_s}/s p50 ${c.jspublish.p50_ms} ms p99 ${c.jspublish.p99_ms} ms`, '', ''],
    ['bare Fastify POST (ceiling)', `${c.fastify_bare_post.req_per_s}/s p99 ${c.fastify_bare_post.p99_ms} ms`, '', ''],
    ['minimal intake (ceiling)', `${c.minimal_intake.req_per_s}/s p99 ${c.minimal_intake.p99_ms} ms`, '', ''],
    ['orderflow intake, 50 conns', `${intake.req_per_s}/s p50 ${intake.p50_ms} ms p99 ${intake.p99_ms} ms, ${intake.errors + intake.non_2xx} errors`, `${c.minimal_intake.req_per_s}/s`, `${intake.ratio_to_minimal_intake}`],
    ...steps.map((s) => [
      `pipeline @ ${s.offered_per_s}/s offered`,
      `${s.finished_per_s}/s finished, backlog ${s.backlog_start}→${s.backlog_end}, e2e p50 ${s.e2e_ms.p50} p99 ${s.e2e_ms.p99} max ${s.e2e_ms.max} ms, ${s.cpu_ms_per_order} CPU ms/order${s.sustained ? '' : ' (backlog grows)'}`,
      `${s.offered_per_s}/s`,
      `${round(s.finished_per_s / s.offered_per_s, 2)}`,
    ]),
    ['max sustained pipeline', `${r.max_sustained_per_s} orders/s`, '', ''],
    ['peak RSS (MB)', Object.entries(r.peak_rss_mb as Record<string, number>).map(([k, v]) => `${k} ${v}`).join(', '), '', ''],
  ];
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return `${rows.map((row, j) => `| ${row.map((cell, i) => cell.padEnd(w[i]!)).join(' | ')} |${j === 0 ? `\n|${w.map((n) => '-'.repeat(n + 2)).join('|')}|` : ''}`).join('\n')}\n`;
}

await main();
