/**
 * npm run bench:profile [-- web|fulfillment|activity|payments] [--rate=N] [--postgresql]
 * Runs orderflow under a steady load (N orders/s, default 150; 0: as fast as 50 connections go),
 * on SQLite or (--postgresql) on a PostgreSQL server started for the run (test/helpers/postgres.ts),
 * with one process under the V8 CPU profiler, then prints
 * where its CPU time went: the top functions (self time) and the top packages.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { startNatsServer } from '../src/nats/server-process.js';
import { nodeFlags } from '../src/runtime/node-flags.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { freePort, type Running, runCli, spawnCli } from '../test/helpers/processes.js';
import { cannon, openLoop } from './lib.js';

const target = z.enum(['web', 'fulfillment', 'activity', 'payments']).parse(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 'web');
const rate = z.coerce
  .number()
  .int()
  .min(0)
  .parse(process.argv.find((a) => a.startsWith('--rate='))?.slice(7) ?? 150);
const ROOT = resolve(import.meta.dirname, '..');
const dir = join(ROOT, 'bench', 'tmp', `profile-${Date.now()}`);
const profDir = join(dir, 'prof');
mkdirSync(profDir, { recursive: true });

const nats = await startNatsServer({ storeDir: join(dir, 'nats'), watchParent: true });
const postgres = process.argv.includes('--postgresql') ? await startPostgres() : null;
const port = await freePort();
const env = {
  NATS_URL: nats.url,
  PORT: String(port),
  DATA_DIR: dir,
  DATABASE_URL: postgres ? await postgres.createDatabase('orderflow') : `file:${join(dir, 'o.db')}`,
  LOG_LEVEL: 'warn',
  ORDERFLOW_PRETTY: '0',
  NODE_ENV: 'production',
  RATE_LIMIT_ORDERS_PER_MIN: '0',
  RATE_LIMIT_OPERATOR_PER_MIN: '0',
};
await runCli(['setup'], env);
const names = ['web', 'payments', 'activity', 'fulfillment', 'reconciler'];
const procs: Running[] = names.filter((n) => n !== target).map((n) => spawnCli(n, n === 'web' ? ['web'] : ['worker', n], env));
const targetArgs = target === 'web' ? ['web'] : ['worker', target];
const profiled = spawn(
  process.execPath,
  [...nodeFlags(targetArgs), '--cpu-prof', `--cpu-prof-dir=${profDir}`, join(ROOT, 'bin/orderflow.mjs'), ...targetArgs],
  { env: { ...process.env, ...env }, stdio: 'inherit' },
);
for (;;) {
  if (
    await fetch(`http://127.0.0.1:${port}/ready`)
      .then((r) => r.ok)
      .catch(() => false)
  )
    break;
  await new Promise((r) => setTimeout(r, 200));
}
process.stderr.write(`[profile] ${target} under ${rate || 'as many as 50 connections send'} orders/s for 10 s\n`);
const url = `http://127.0.0.1:${port}/orders`;
// The profile covers the process's whole life (start-up: module loading, compiling); only the
// samples taken while the load runs are counted. V8 stamps them on the monotonic clock that
// process.hrtime reads.
const loadFrom = Number(process.hrtime.bigint() / 1000n);
const load = rate
  ? await openLoop(url, rate, 10).result
  : await cannon(url, { customer_email: 'p@example.com', amount: '1.00' }, { connections: 50, durationS: 10 });
const loadTo = Number(process.hrtime.bigint() / 1000n);
process.stderr.write(`[profile] ${JSON.stringify(load)}\n`);
await new Promise((r) => setTimeout(r, 2000));
profiled.kill('SIGTERM');
await new Promise((r) => profiled.once('exit', r));
await Promise.all(procs.map((p) => p.stop()));
await nats.stop();
await postgres?.close();

// The biggest profile is the process itself (tsx's loader thread writes a small one too).
const file = readdirSync(profDir)
  .map((f) => join(profDir, f))
  .sort((a, b) => readFileSync(b).length - readFileSync(a).length)[0]!;
const p = JSON.parse(readFileSync(file, 'utf8')) as {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
};
const t = new Map<number, number>();
let at = p.startTime;
p.samples.forEach((id, i) => {
  at += p.timeDeltas[i] ?? 0;
  if (at >= loadFrom && at <= loadTo) t.set(id, (t.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
});
const parentOf = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const fn = new Map<string, number>();
const pkg = new Map<string, number>();
/** For each function: its self time by the chain of its three nearest callers. */
const callers = new Map<string, Map<string, number>>();
const whereOf = (n: (typeof p.nodes)[number]) => {
  const url = n.callFrame.url.replace(/^file:\/\//, '');
  return url.includes('node_modules/')
    ? url
        .split('node_modules/')[1]!
        .split('/')
        .slice(0, url.includes('node_modules/@') ? 2 : 1)
        .join('/')
    : url.startsWith(ROOT)
      ? url.slice(ROOT.length + 1)
      : url || n.callFrame.functionName;
};
const nameOf = (n: (typeof p.nodes)[number]) => `${n.callFrame.functionName || '(anonymous)'}  ${whereOf(n)}:${n.callFrame.lineNumber}`;
let busy = 0;
for (const n of p.nodes) {
  const us = t.get(n.id) ?? 0;
  if (us === 0) continue;
  const where = whereOf(n);
  if (n.callFrame.functionName !== '(idle)') busy += us;
  fn.set(nameOf(n), (fn.get(nameOf(n)) ?? 0) + us);
  pkg.set(where, (pkg.get(where) ?? 0) + us);
  const chain: string[] = [];
  for (let id = parentOf.get(n.id); id !== undefined && chain.length < 3; id = parentOf.get(id)) chain.push(nameOf(byId.get(id)!).replace(/\s+/, ' '));
  const c = callers.get(nameOf(n)) ?? new Map<string, number>();
  c.set(chain.join(' ← '), (c.get(chain.join(' ← ')) ?? 0) + us);
  callers.set(nameOf(n), c);
}
const top = (m: Map<string, number>, n: number) =>
  [...m]
    .filter(([k]) => !k.startsWith('(idle)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, us]) => `${(us / 1000).toFixed(0).padStart(7)} ms ${((us / busy) * 100).toFixed(1).padStart(5)}%  ${k}`)
    .join('\n');
const calledFrom = [...fn]
  .filter(([k]) => !k.startsWith('(idle)') && !k.startsWith('(garbage') && !k.startsWith('(program'))
  .sort((a, b) => b[1] - a[1])
  .slice(0, 8)
  .map(([k]) => `${k}\n${top(callers.get(k)!, 2).replace(/^/gm, '    ')}`)
  .join('\n');
process.stdout.write(
  `busy ${(busy / 1000).toFixed(0)} ms of ${((loadTo - loadFrom) / 1000).toFixed(0)} ms under load in ${target}\n\ntop functions (self time)\n${top(fn, 25)}\n\n` +
    `top packages / files\n${top(pkg, 15)}\n\nthe top functions, called from (percent of all busy time)\n${calledFrom}\n`,
);
rmSync(dir, { recursive: true, force: true });
