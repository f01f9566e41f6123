/**
 * npm run bench:profile [-- web|fulfillment|activity|payments] [--rate=N]
 * Runs orderflow under a steady load (N orders/s, default 150; 0: as fast as 50 connections go)
 * with one process under the V8 CPU profiler, then prints
 * where its CPU time went: the top functions (self time) and the top packages.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { startNatsServer } from '../src/nats/server-process.js';
import { nodeFlags } from '../src/runtime/node-flags.js';
import { freePort, runCli, spawnCli, type Running } from '../test/helpers/processes.js';
import { cannon, openLoop } from './lib.js';

const target = z.enum(['web', 'fulfillment', 'activity', 'payments']).parse(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 'web');
const rate = z.coerce.number().int().min(0).parse(process.argv.find((a) => a.startsWith('--rate='))?.slice(7) ?? 150);
const ROOT = resolve(import.meta.dirname, '..');
const dir = join(ROOT, 'bench', 'tmp', `profile-${Date.now()}`);
const profDir = join(dir, 'prof');
mkdirSync(profDir, { recursive: true });

const nats = await startNatsServer({ storeDir: join(dir, 'nats') });
const port = await freePort();
const env = { NATS_URL: nats.url, PORT: String(port), DATA_DIR: dir, DATABASE_URL: `file:${join(dir, 'o.db')}`, LOG_LEVEL: 'warn', ORDERFLOW_PRETTY: '0', NODE_ENV: 'production', RATE_LIMIT_ORDERS_PER_MIN: '0', RATE_LIMIT_OPERATOR_PER_MIN: '0' };
await runCli(['setup'], env);
const names = ['web', 'payments', 'activity', 'fulfillment', 'reconciler'];
const procs: Running[] = names.filter((n) => n !== target).map((n) => spawnCli(n, n === 'web' ? ['web'] : ['worker', n], env));
const targetArgs = target === 'web' ? ['web'] : ['worker', target];
const profiled = spawn(process.execPath, [...nodeFlags(targetArgs), '--cpu-prof', `--cpu-prof-dir=${profDir}`, join(ROOT, 'bin/orderflow.mjs'), ...targetArgs], { env: { ...process.env, ...env }, stdio: 'inherit' });
for (;;) {
  if (await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.ok).catch(() => false)) break;
  await new Promise((r) => setTimeout(r, 200));
}
process.stderr.write(`[profile] ${target} under ${rate || 'as many as 50 connections send'} orders/s for 10 s\n`);
const url = `http://127.0.0.1:${port}/orders`;
const load = rate ? await openLoop(url, rate, 10).result : await cannon(url, { customer_email: 'p@example.com', amount: '1.00' }, { connections: 50, durationS: 10 });
process.stderr.write(`[profile] ${JSON.stringify(load)}\n`);
await new Promise((r) => setTimeout(r, 2000));
profiled.kill('SIGTERM');
await new Promise((r) => profiled.once('exit', r));
await Promise.all(procs.map((p) => p.stop()));
await nats.stop();

// The biggest profile is the process itself (tsx's loader thread writes a small one too).
const file = readdirSync(profDir).map((f) => join(profDir, f)).sort((a, b) => readFileSync(b).length - readFileSync(a).length)[0]!;
const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]; samples: number[]; timeDeltas: number[] };
const t = new Map<number, number>();
p.samples.forEach((id, i) => t.set(id, (t.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
const fn = new Map<string, number>();
const pkg = new Map<string, number>();
let busy = 0;
for (const n of p.nodes) {
  const us = t.get(n.id) ?? 0;
  const url = n.callFrame.url.replace(/^file:\/\//, '');
  const where = url.includes('node_modules/') ? url.split('node_modules/')[1]!.split('/').slice(0, url.includes('node_modules/@') ? 2 : 1).join('/') : url.startsWith(ROOT) ? url.slice(ROOT.length + 1) : url || n.callFrame.functionName;
  if (n.callFrame.functionName !== '(idle)') busy += us;
  fn.set(`${n.callFrame.functionName || '(anonymous)'}  ${where}:${n.callFrame.lineNumber}`, (fn.get(`${n.callFrame.functionName || '(anonymous)'}  ${where}:${n.callFrame.lineNumber}`) ?? 0) + us);
  pkg.set(where, (pkg.get(where) ?? 0) + us);
}
const top = (m: Map<string, number>, n: number) => [...m].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => `${(us / 1000).toFixed(0).padStart(7)} ms ${((us / busy) * 100).toFixed(1).padStart(5)}%  ${k}`).join('\n');
process.stdout.write(`busy ${(busy / 1000).toFixed(0)} ms in ${target}\n\ntop functions (self time)\n${top(fn, 25)}\n\ntop packages / files\n${top(pkg, 15)}\n`);
rmSync(dir, { recursive: true, force: true });
