import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { type ConnectionOptions, nkeyAuthenticator } from 'nats';
import pg from 'pg';

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
  /** Every answer, whatever its status. */
  req_per_s: number;
  /** 2xx answers only: what a ratio of intakes compares (a failing intake answers fast). */
  ok_per_s: number;
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
    '-c',
    String(opts.connections),
    '-d',
    String(opts.durationS),
    '-m',
    'POST',
    '-H',
    'content-type=application/json',
    '-H',
    'accept=application/json',
    '-b',
    JSON.stringify(body),
    ...[url].flat(),
  ]);
  const r = JSON.parse(out) as {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    errors: number;
    timeouts: number;
    non2xx: number;
  };
  const ok = r.requests.total === 0 ? 0 : (r.requests.total - r.non2xx) / r.requests.total;
  return {
    req_per_s: round(r.requests.average, 0),
    ok_per_s: round(r.requests.average * ok, 0),
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
  /** The errors by code (ECONNRESET, …; `unanswered`: no answer within 30 s of the step's end). */
  error_kinds?: Record<string, number>;
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
 * (bench/load/open-loop.ts). With `idsFile`, it writes `order id,send epoch ms,latency ms` per accepted order.
 */
export function openLoop(url: string, rate: number, durationS: number, idsFile?: string): OpenLoop {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench/load/open-loop.ts'), url, String(rate), String(durationS), ...(idsFile ? [idsFile] : [])],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
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
  child.once('exit', (code) => {
    for (const f of fails.slice(n)) f(new Error(`bench/load/open-loop.ts exited with ${code}`));
  });
  return { started, sent, result };
}

/** Starts a script with tsx and resolves with the first JSON line it prints (`{ ready: … }` or a result). */
export function startScript(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; firstLine: Promise<Record<string, unknown>> } {
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
  return { servers: url.split(','), ...(seed ? { authenticator: nkeyAuthenticator(new TextEncoder().encode(readFileSync(seed, 'utf8').trim())) } : {}) };
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
 * The pid of a PostgreSQL server's postmaster, found from the server itself (the parent of the
 * backend serving this connection), for treeCpuMs.
 */
export async function postmasterPid(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const backend = Number((await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
    return Number(/PPid:\s+(\d+)/.exec(readFileSync(`/proc/${backend}/status`, 'utf8'))![1]);
  } finally {
    await client.end();
  }
}
