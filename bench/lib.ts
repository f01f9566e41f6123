import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { nkeyAuthenticator, type ConnectionOptions } from 'nats';
import pg from 'pg';
import { freePort } from '../test/helpers/processes.js';

/** Small helpers shared by the bench runner and the ceiling scripts. */

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

export const say = (s: string) => process.stderr.write(`[bench] ${s}\n`);

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` back to back for `ms`, timing each call: ops/s and latency percentiles. */
export async function timeLoop(ms: number, fn: () => Promise<unknown>): Promise<{ ops: number; ops_per_s: number; p50_ms: number; p99_ms: number }> {
  const lat: number[] = [];
  const end = performance.now() + ms;
  const start = performance.now();
  while (performance.now() < end) {
    const t = performance.now();
    await fn();
    lat.push(performance.now() - t);
  }
  const took = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  return { ops: lat.length, ops_per_s: round(lat.length / took, 0), p50_ms: round(percentile(lat, 50), 3), p99_ms: round(percentile(lat, 99), 3) };
}

/** CPU time (ms) and peak RSS (MB) of a process, from /proc. */
export function procStats(pid: number): { cpu_ms: number; peak_rss_mb: number; rss_mb: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return { cpu_ms: (ticks * 1000) / 100, peak_rss_mb: round(kb('VmHWM') / 1024, 1), rss_mb: round(kb('VmRSS') / 1024, 1) };
  } catch {
    return null;
  }
}

export interface HttpResult {
  req_per_s: number;
  p50_ms: number;
  p99_ms: number;
  requests: number;
  errors: number;
  non_2xx: number;
}

const ROOT = resolve(import.meta.dirname, '..');

/** Runs a command to its end and returns its standard output (its standard error goes to ours). */
function capture(cmd: string, args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.once('exit', (code) => (code === 0 ? done(out) : fail(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))));
  });
}

/**
 * autocannon, as its own process (so the load generator does not share a CPU with what it measures), at fixed concurrency.
 * Several URLs (several web processes): the connections are spread evenly over them.
 */
export async function cannon(url: string | string[], body: unknown, opts: { connections: number; durationS: number }): Promise<HttpResult> {
  const out = await capture(process.execPath, [
    join(ROOT, 'node_modules/autocannon/autocannon.js'),
    '--json',
    '-c', String(opts.connections),
    '-d', String(opts.durationS),
    '-m', 'POST',
    '-H', 'content-type=application/json',
    '-H', 'accept=application/json',
    '-b', JSON.stringify(body),
    ...[url].flat(),
  ]);
  const r = JSON.parse(out) as { requests: { average: number; total: number }; latency: { p50: number; p99: number }; errors: number; timeouts: number; non2xx: number };
  return {
    req_per_s: round(r.requests.average, 0),
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    requests: r.requests.total,
    errors: r.errors + r.timeouts,
    non_2xx: r.non2xx,
  };
}

export interface LatencyFigures {
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  samples: number;
}

export interface OpenLoopResult extends LatencyFigures {
  offered_per_s: number;
  sent: number;
  sent_per_s: number;
  answered: number;
  errors: number;
  non_2xx: number;
  /** The answers to requests sent in the step's last third: the steady state. */
  last_third: LatencyFigures;
}

/** When the last request of the step went out, and what the web app had not answered yet. */
export interface OpenLoopSent {
  sent: number;
  send_seconds: number;
  inflight: number;
  oldest_inflight_ms: number;
}

export interface OpenLoop {
  /** Wall-clock time (epoch ms) of the first request. */
  started: Promise<number>;
  /** The step's end: every request sent. */
  sent: Promise<OpenLoopSent>;
  /** Every answer in (or given up on). */
  result: Promise<OpenLoopResult>;
}

/**
 * An open-loop offered load of `rate` orders/s, evenly spread, from its own process
 * (bench/load/open-loop.ts). With `idsFile`, it writes `order id,send epoch ms` per accepted order.
 */
export function openLoop(url: string, rate: number, durationS: number, idsFile?: string): OpenLoop {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/load/open-loop.ts'), url, String(rate), String(durationS), ...(idsFile ? [idsFile] : [])], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: ((l: Record<string, unknown>) => void)[] = [];
  const fails: ((e: Error) => void)[] = [];
  const next = <T>() =>
    new Promise<T>((resolve, reject) => {
      lines.push(resolve as (l: Record<string, unknown>) => void);
      fails.push(reject);
    });
  const started = next<{ started: number }>().then((l) => l.started);
  const sent = next<OpenLoopSent>();
  const result = next<OpenLoopResult>();
  // Whoever awaits the first promise sees the failure; the later ones must not crash the bench unawaited.
  for (const p of [started, sent, result]) p.catch(() => undefined);
  let n = 0;
  createInterface({ input: child.stdout! }).on('line', (l) => {
    const settle = lines[n++];
    try {
      settle?.(JSON.parse(l) as Record<string, unknown>);
    } catch (err) {
      fails[n - 1]?.(err as Error);
    }
  });
  child.once('exit', (code) => fails.slice(n).forEach((f) => f(new Error(`bench/load/open-loop.ts exited with ${code}`))));
  return { started, sent, result };
}

/** Starts a script with tsx and resolves with the first JSON line it prints (`{ ready: … }` or a result). */
export function startScript(script: string, args: string[], env: Record<string, string> = {}): { child: ChildProcess; firstLine: Promise<Record<string, unknown>> } {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const firstLine = new Promise<Record<string, unknown>>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => {
      try {
        resolve(JSON.parse(l) as Record<string, unknown>);
      } catch (err) {
        reject(err);
      }
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before printing a result`)));
  });
  return { child, firstLine };
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * How the bench's own NATS clients (the ceilings, its backlog probe) connect: as the bench's
 * identity, whose seed file run.ts names in BENCH_NATS_SEED, on the same authorized server that
 * orderflow runs on; without it, anonymously.
 */
export function benchNatsOptions(url: string): ConnectionOptions {
  const seed = process.env.BENCH_NATS_SEED;
  return { servers: url, ...(seed ? { authenticator: nkeyAuthenticator(new TextEncoder().encode(readFileSync(seed, 'utf8').trim())) } : {}) };
}

/**
 * CPU time (ms) of a process and of every process below it, living or reaped: a PostgreSQL
 * server runs one backend process per connection, and its CPU belongs to what it serves.
 */
export function treeCpuMs(pid: number): number {
  const stat = (p: number) => {
    try {
      const s = readFileSync(`/proc/${p}/stat`, 'utf8');
      return s.slice(s.lastIndexOf(')') + 2).split(' ');
    } catch {
      return null;
    }
  };
  const children = (p: number): number[] => {
    try {
      return readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const own = (p: number, reaped: boolean) => {
    const f = stat(p);
    // utime + stime, and (cutime + cstime) for children already waited for.
    return f ? Number(f[11]) + Number(f[12]) + (reaped ? Number(f[13]) + Number(f[14]) : 0) : 0;
  };
  let ticks = 0;
  const walk = (p: number) => {
    ticks += own(p, true);
    for (const c of children(p)) walk(c);
  };
  walk(pid);
  return (ticks * 1000) / 100;
}

/**
 * A PostgreSQL server for one bench run, started as the tests start one: `initdb` into a fresh
 * temp dir (owned by the `postgres` user, which runs every binary when we are root: PostgreSQL
 * refuses root), a free loopback port, trust authentication, fsync and synchronous_commit on
 * (commits cost what they cost a user). Removed on `close()` and when this process exits.
 *
 * A starter until test/helpers/postgres.ts (branch `postgres`) is merged: it has the same
 * `startPostgres()` → `{ url(database), createDatabase, close }` shape, so switching is an import.
 */
export interface BenchPostgres {
  url(database?: string): string;
  port: number;
  dir: string;
  createDatabase(name: string): Promise<string>;
  /** The postmaster's pid (for CPU accounting). */
  pid(): number;
  close(): Promise<void>;
}

export async function startPostgres(): Promise<BenchPostgres> {
  const root = '/usr/lib/postgresql';
  const version = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin/pg_ctl'))).sort((a, b) => Number(b) - Number(a))[0] : undefined;
  const bin = process.env.POSTGRES_BIN_DIR ?? (version ? join(root, version, 'bin') : undefined);
  if (!bin) throw new Error('PostgreSQL was not found: install it (Debian: `apt-get install postgresql`) or set POSTGRES_BIN_DIR to the folder holding initdb and pg_ctl.');
  const asRoot = process.getuid?.() === 0;
  const owner = (cmd: string, args: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
  const dir = mkdtempSync(join(tmpdir(), 'orderflow-bench-pg-'));
  if (asRoot) {
    const ids = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
    chownSync(dir, ids('-u'), ids('-g'));
  }
  const data = join(dir, 'data');
  const ctl = (args: string[]) => {
    const [cmd, argv] = owner(join(bin, 'pg_ctl'), ['-D', data, ...args]);
    return execFileSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  };
  let stopped = false;
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    try {
      if (existsSync(join(data, 'postmaster.pid'))) ctl(['-m', 'fast', '-w', 'stop']);
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopNow);
  const [initCmd, initArgs] = owner(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync']);
  execFileSync(initCmd, initArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await freePort();
  const settings = { listen_addresses: '127.0.0.1', unix_socket_directories: dir, max_connections: '200', fsync: 'on', synchronous_commit: 'on' };
  ctl(['-l', join(dir, 'postgres.log'), '-o', [`-p ${port}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' '), '-w', '-t', '30', 'start']);
  const url = (database = 'postgres') => `postgresql://postgres@127.0.0.1:${port}/${database}`;
  return {
    url,
    port,
    dir,
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: url() });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    pid: () => Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]),
    async close() {
      process.off('exit', stopNow);
      stopNow();
    },
  };
}
