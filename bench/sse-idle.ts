/**
 * npx tsx bench/sse-idle.ts [--rate=200] [--seconds=8] [--runs=3]
 * POST /orders latency with and without 500 idle server-sent-event clients (clients that open a
 * stream and never read), and with those plus a flood of live events. Prints numbers, asserts
 * nothing: the web app's own processes, loopback only, every step bounded in time.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { type Socket, connect as tcpConnect } from 'node:net';
import { join, resolve } from 'node:path';
import { connect } from 'nats';
import { z } from 'zod';
import { MetricEvents } from '../src/events/contracts.js';
import { createEvent } from '../src/events/envelope.js';
import { encodeJson } from '../src/nats/codec.js';
import { startNatsServer } from '../src/nats/server-process.js';
import { freePort, type Running, runCli, spawnCli } from '../test/helpers/processes.js';
import { type OpenLoopResult, openLoop, procStats, round } from './lib.js';

const num = (name: string, dflt: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const args = z
  .object({ rate: z.number().int().min(1).max(5000), seconds: z.number().int().min(1).max(120), runs: z.number().int().min(1).max(10) })
  .parse({ rate: num('rate', 200), seconds: num('seconds', 8), runs: num('runs', 3) });
const IDLE = 500;
const TOKEN = randomUUID() + randomUUID();
const say = (s: string) => process.stderr.write(`[sse-idle] ${s}\n`);
const dir = join(resolve(import.meta.dirname, '..'), 'bench', 'tmp', `sse-idle-${Date.now()}`);
mkdirSync(dir, { recursive: true });

/** A stream opened and then never read (450 order pages, 50 dashboards: they get every event). */
function idle(port: number, i: number): Promise<Socket> {
  const path = i % 10 === 0 ? '/dashboard/stream' : `/orders/${randomUUID()}/stream`;
  return new Promise((ok, fail) => {
    const s = tcpConnect(port, '127.0.0.1', () =>
      s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`),
    );
    s.once('data', (d) => {
      s.pause();
      if (!d.toString().startsWith('HTTP/1.1 200')) fail(new Error(`stream refused: ${d.toString().split('\r\n')[0]}`));
      else ok(s);
    });
    s.once('error', fail);
  });
}

async function main() {
  const nats = await startNatsServer({ storeDir: join(dir, 'nats'), watchParent: true });
  const webPort = await freePort();
  const env = {
    NATS_URL: nats.url,
    PORT: String(webPort),
    DATA_DIR: dir,
    DATABASE_URL: `file:${join(dir, 'orderflow.db')}`,
    LOG_LEVEL: 'warn',
    ORDERFLOW_PRETTY: '0',
    NODE_ENV: 'production',
    ORDERFLOW_OPERATOR_TOKEN: TOKEN,
    // All 500 come from one address here; the caps themselves are shown by test/web/sse.test.ts.
    SSE_MAX_CLIENTS: '1000',
    SSE_MAX_PER_IP: '1000',
    RATE_LIMIT_ORDERS_PER_MIN: '0',
  };
  const procs: Running[] = [];
  const sockets: Socket[] = [];
  try {
    const setup = await runCli(['setup'], env);
    if (setup.code !== 0) throw new Error(setup.stderr);
    for (const name of ['web', 'payments', 'activity', 'fulfillment', 'reconciler'])
      procs.push(spawnCli(name, name === 'web' ? ['web'] : ['worker', name], env));
    const base = `http://127.0.0.1:${webPort}`;
    for (
      let end = Date.now() + 60_000;
      !(await fetch(`${base}/ready`)
        .then((r) => r.ok)
        .catch(() => false));
    ) {
      if (Date.now() > end) throw new Error('the web app did not become ready');
      await new Promise((r) => setTimeout(r, 200));
    }
    const web = procs[0]!;
    const url = `${base}/orders`;
    await openLoop(url, args.rate, 2).result; // warm-up
    const rows: { condition: string; run: number; result: OpenLoopResult; web_rss_mb: number | undefined }[] = [];
    const measure = async (condition: string, run: number) => {
      const result = await openLoop(url, args.rate, args.seconds).result;
      rows.push({ condition, run, result, web_rss_mb: procStats(web.child.pid!)?.rss_mb });
      say(
        `${condition} #${run}: p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, max ${result.max_ms} ms (${result.answered}/${result.sent} answered, ${result.non_2xx} non-2xx)`,
      );
    };

    /** A flood of 5000 live events/s on metrics.orders (every dashboard stream is sent each one), while `measure` runs. */
    const withFlood = async (condition: string, run: number) => {
      const nc = await connect({ servers: nats.url });
      let flooding = true;
      const flood = (async () => {
        for (let n = 0; flooding && n < 5000 * (args.seconds + 5); ) {
          for (let i = 0; i < 500; i++, n++)
            nc.publish(
              MetricEvents.orders.subject,
              encodeJson(
                createEvent(
                  MetricEvents.orders,
                  { event: 'order.shipped', order_id: `f${n}`, amount_cents: n, lead_time_ms: 1, at: new Date().toISOString() },
                  { correlationId: `f${n}` },
                ),
              ),
            );
          await nc.flush();
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const cpu0 = procStats(web.child.pid!)?.cpu_ms ?? 0;
      await measure(condition, run);
      say(`  web CPU during that step: ${round(((procStats(web.child.pid!)?.cpu_ms ?? 0) - cpu0) / args.seconds / 10, 0)} % of a core`);
      flooding = false;
      await flood;
      await nc.close();
    };

    for (let run = 1; run <= args.runs; run++) {
      await measure('no SSE clients', run);
      // The flood alone: what it costs the machine (generator, nats-server, the web app's hub) without any stream.
      await withFlood('no SSE clients + 5000 events/s', run);
      for (let i = 0; i < IDLE; i++) sockets.push(await idle(webPort, i));
      await measure(`${IDLE} idle SSE clients`, run);
      await withFlood(`${IDLE} idle SSE clients + 5000 events/s`, run);
      const open = (await (await fetch(`${base}/metrics`)).text()).match(/^orderflow_sse_streams (\d+)/m)?.[1];
      say(`  streams still open after the flood: ${open} (a client is dropped once its kernel buffers are full and 64 KiB more wait in Node)`);
      for (const s of sockets.splice(0)) s.destroy();
      await new Promise((r) => setTimeout(r, 1000));
    }

    const by = new Map<string, typeof rows>();
    for (const r of rows) by.set(r.condition, [...(by.get(r.condition) ?? []), r]);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const summary = [...by.entries()].map(([condition, rs]) => ({
      condition,
      offered_per_s: args.rate,
      runs: rs.length,
      p99_ms_median: median(rs.map((r) => r.result.p99_ms)),
      p99_ms_range: [Math.min(...rs.map((r) => r.result.p99_ms)), Math.max(...rs.map((r) => r.result.p99_ms))],
      p50_ms_median: median(rs.map((r) => r.result.p50_ms)),
      errors: rs.reduce((a, r) => a + r.result.errors + r.result.non_2xx, 0),
      web_rss_mb_max: Math.max(...rs.map((r) => r.web_rss_mb ?? 0)),
    }));
    process.stdout.write(`${JSON.stringify({ date: new Date().toISOString(), seconds_per_run: args.seconds, summary }, null, 2)}\n`);
    for (const s of summary)
      say(
        `${s.condition.padEnd(40)} p99 ${round(s.p99_ms_median, 1)} ms (range ${s.p99_ms_range.join('–')}), p50 ${s.p50_ms_median} ms, web RSS ≤ ${s.web_rss_mb_max} MB`,
      );
  } finally {
    for (const s of sockets) s.destroy();
    await Promise.all(procs.map((p) => p.stop('SIGTERM', 10_000)));
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
