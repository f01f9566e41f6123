/**
 * npm run bench:stalls -- [rate, default 300] [step seconds, default 20] [rounds, default 2]
 * Where a POST's tail latency comes from. orderflow on SQLite and one nats-server under an
 * open-loop load, while every process's /metrics is read every 500 ms: its event-loop delay max,
 * its garbage collector's time (major collections apart) and its CPU. Then the slow answers
 * (over 10 ms) are grouped into stalls (slow answers less than 60 ms apart), and each stall is
 * printed with what every process did in the 500 ms around it. A stall that lines up with one
 * process's major GC or event-loop delay is that process's; one that lines up with nothing is
 * CPU contention (every process waiting for one of the cores). The first round warms up.
 * STALLS_ENV='{"BACKGROUND_NICE":"0"}' (JSON) adds settings to every process's environment, to
 * compare one with the default back to back. Reading /metrics costs the web app a few database
 * reads (its system gauges) each time. For finding a cause, not for quoting: the figures are
 * `npm run bench`'s.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { defaultAuthDir, ensureNatsAuth } from '../src/nats/auth/identities.js';
import { TEST_PERMISSIONS } from '../src/nats/auth/permissions.js';
import { startNatsServer } from '../src/nats/server-process.js';
import { freePort, runCli, spawnCli } from '../test/helpers/processes.js';
import { openLoop, percentile, procStats, sleep } from './lib.js';
import { sqliteUrl } from './orderflow.js';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const [rate, stepS, rounds] = z
  .tuple([
    z.coerce.number().int().min(1).max(5000).default(300),
    z.coerce.number().min(2).max(120).default(20),
    z.coerce.number().int().min(1).max(10).default(2),
  ])
  .parse([positional[0], positional[1], positional[2]]);
const SLOW_MS = 10;
const WINDOW_MS = 500;

const ROOT = resolve(import.meta.dirname, '..');
const dir = join(ROOT, 'bench', 'tmp', `stalls-${Date.now()}`);
mkdirSync(dir, { recursive: true });
const auth = ensureNatsAuth(defaultAuthDir({ DATA_DIR: dir }), { extra: [{ kind: 'bench', permissions: TEST_PERMISSIONS }] });
const nats = await startNatsServer({ storeDir: join(dir, 'nats'), configFile: auth.serverConfig, watchParent: true });
const webPort = await freePort();
const env = {
  NATS_URL: nats.url,
  PORT: String(webPort),
  DATA_DIR: dir,
  DATABASE_URL: sqliteUrl(dir),
  LOG_LEVEL: 'warn',
  ORDERFLOW_PRETTY: '0',
  NODE_ENV: 'production',
  RATE_LIMIT_ORDERS_PER_MIN: '0',
  RATE_LIMIT_OPERATOR_PER_MIN: '0',
  ...z.record(z.string(), z.string()).parse(JSON.parse(process.env.STALLS_ENV ?? '{}')),
};
const setup = await runCli(['setup'], env, 60_000);
if (setup.code !== 0) throw new Error(setup.stderr);
/** Where each process serves /metrics: the web app on its own port, each worker on one given to it. */
const ports: Record<string, number> = { web: webPort };
const procs = [spawnCli('web', ['web'], env)];
for (const w of ['payments', 'activity', 'fulfillment', 'reconciler']) {
  ports[w] = await freePort();
  procs.push(spawnCli(w, ['worker', w, '--metrics-port', String(ports[w])], env));
}

/** One process in one scrape: cumulative GC ms (all, major), the loop delay max since the last scrape, CPU ms. */
interface Reading {
  lagMaxMs: number;
  gcMs: number;
  majorMs: number;
  cpuMs: number;
}
/** The machine's CPU time by kind (ms, all cores, /proc/stat): a stall in every process at once with steal or iowait is the host's. */
interface MachineCpu {
  busy: number;
  idle: number;
  iowait: number;
  steal: number;
}
type Scrape = { at: number; by: Record<string, Reading>; machine: MachineCpu };

function machineCpu(): MachineCpu {
  // cpu  user nice system idle iowait irq softirq steal …, in clock ticks (USER_HZ, 100 on Linux)
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const ms = (n: number) => (n ?? 0) * 10;
  return { busy: ms(f[0]! + f[1]! + f[2]! + f[5]! + f[6]!), idle: ms(f[3]!), iowait: ms(f[4]!), steal: ms(f[7]!) };
}

const sum = (text: string, re: RegExp) => [...text.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
async function scrape(): Promise<Scrape> {
  const by: Record<string, Reading> = {};
  await Promise.all(
    Object.entries(ports).map(async ([name, port]) => {
      const text = await fetch(`http://127.0.0.1:${port}/metrics`)
        .then((r) => r.text())
        .catch(() => '');
      by[name] = {
        // prom-client resets the loop-delay histogram at each scrape: this is the max since the last.
        lagMaxMs: sum(text, /^orderflow_nodejs_eventloop_lag_max_seconds ([0-9.e+-]+)$/gm) * 1000,
        gcMs: sum(text, /^orderflow_nodejs_gc_duration_seconds_sum\{[^}]*\} ([0-9.e+-]+)$/gm) * 1000,
        majorMs: sum(text, /^orderflow_nodejs_gc_duration_seconds_sum\{kind="major"\} ([0-9.e+-]+)$/gm) * 1000,
        cpuMs: procStats(procs.find((p) => p.name === name)!.child.pid!)?.cpu_ms ?? 0,
      };
    }),
  );
  by['nats-server'] = { lagMaxMs: 0, gcMs: 0, majorMs: 0, cpuMs: procStats(nats.pid)?.cpu_ms ?? 0 };
  return { at: performance.timeOrigin + performance.now(), by, machine: machineCpu() };
}

/** What each process did between two scrapes, as one line. */
function window(a: Scrape, b: Scrape, wholeRound?: Scrape[]): string {
  const m = (k: keyof MachineCpu) => Math.round(b.machine[k] - a.machine[k]);
  const machine = `machine: busy ${m('busy')} idle ${m('idle')} iowait ${m('iowait')} steal ${m('steal')}`;
  const maxDelay = (name: string) => Math.round(Math.max(...(wholeRound ?? [b]).map((x) => x.by[name]?.lagMaxMs ?? 0)));
  const procs = Object.keys(b.by)
    .map((name) => {
      const x = a.by[name]!;
      const y = b.by[name]!;
      const major = y.majorMs - x.majorMs;
      const lag = name === 'nats-server' ? '' : ` delay≤${maxDelay(name)}`;
      const gc = name === 'nats-server' ? '' : ` gc ${Math.round(y.gcMs - x.gcMs)}${major > 0 ? ` (major ${Math.round(major)})` : ''}`;
      return `${name}: cpu ${Math.round(y.cpuMs - x.cpuMs)}${gc}${lag}`;
    })
    .join(' | ');
  return `${procs} | ${machine}`;
}

try {
  for (
    let i = 0;
    i < 240 &&
    !(await fetch(`http://127.0.0.1:${webPort}/ready`).then(
      (r) => r.ok,
      () => false,
    ));
    i++
  )
    await sleep(250);
  await sleep(1000);
  for (let round = 1; round <= rounds; round++) {
    const ids = join(dir, `ids-${round}.csv`);
    const scrapes: Scrape[] = [];
    let loading = true;
    const scraper = (async () => {
      while (loading) {
        scrapes.push(await scrape());
        await sleep(WINDOW_MS);
      }
    })();
    const r = await openLoop(`http://127.0.0.1:${webPort}/orders`, rate, stepS, ids).result;
    loading = false;
    await scraper;
    const answers = readFileSync(ids, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(','))
      .map(([, sent, ms]) => ({ sent: Number(sent), ms: Number(ms) }))
      .sort((x, y) => x.sent - y.sent);
    const sorted = answers.map((a) => a.ms).sort((x, y) => x - y);
    const p = (q: number) => percentile(sorted, q).toFixed(1);
    const stalls: { from: number; to: number; n: number; maxMs: number }[] = [];
    for (const a of answers.filter((x) => x.ms > SLOW_MS)) {
      const last = stalls.at(-1);
      if (last && a.sent - last.to < 60) Object.assign(last, { to: a.sent, n: last.n + 1, maxMs: Math.max(last.maxMs, a.ms) });
      else stalls.push({ from: a.sent, to: a.sent, n: 1, maxMs: a.ms });
    }
    const slow = answers.filter((a) => a.ms > SLOW_MS).length;
    console.log(
      `round ${round}${round === 1 && rounds > 1 ? ' (warm-up)' : ''}: ${rate}/s for ${stepS} s, ${answers.length} of ${r.sent} accepted; ` +
        `POST p50 ${p(50)} p90 ${p(90)} p99 ${p(99)} max ${sorted.at(-1)?.toFixed(1)} ms; ${slow} answers over ${SLOW_MS} ms in ${stalls.length} stalls`,
    );
    const t0 = answers[0]?.sent ?? 0;
    for (const s of stalls.filter((x) => x.n >= 5 || x.maxMs >= 25)) {
      // From the scrape before the stall began to the first after it ended (its answers came later still).
      const i = scrapes.findLastIndex((x) => x.at <= s.from);
      const j = scrapes.findIndex((x) => x.at > s.to + s.maxMs);
      const around = i >= 0 && j > i ? window(scrapes[i]!, scrapes[j]!, scrapes.slice(i + 1, j + 1)) : '(outside the scrapes)';
      console.log(
        `  ${((s.from - t0) / 1000).toFixed(2).padStart(6)} s: ${s.n} slow over ${Math.round(s.to - s.from)} ms, max ${s.maxMs.toFixed(0)} ms — ${around}`,
      );
    }
    const first = scrapes[0];
    const lastScrape = scrapes.at(-1);
    if (first && lastScrape) console.log(`  the whole round: ${window(first, lastScrape, scrapes.slice(1))}`);
    const rss = [...procs.map((x) => [x.name, x.child.pid!] as const), ['nats-server', nats.pid] as const];
    console.log(`  peak RSS so far (MB): ${rss.map(([name, pid]) => `${name} ${Math.round(procStats(pid)?.peak_rss_mb ?? 0)}`).join(', ')}`);
  }
} finally {
  await Promise.all(procs.map((p) => p.stop('SIGTERM')));
  await nats.stop();
  rmSync(dir, { recursive: true, force: true });
}
