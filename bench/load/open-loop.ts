// An open-loop load: POSTs `rate` orders a second, evenly spread (a 1 ms schedule), for
// `seconds`, whatever the server's answers are doing — unlike autocannon's rate mode, which sends
// each connection's quota in a burst at the start of every second.
//
// Prints JSON lines on stdout: {"started":epochMs} when the first request goes out,
// {"sent":…} when the last one has (with what is still in flight: the web stage's backlog), then
// the result once every answer is in (or 30 s later), with the latency of the whole step and of
// its last third (the steady state, after any warm-up). With an ids file, writes one line
// `order id,send time (epoch ms),latency (ms)` per accepted order, so the bench can follow each one
// to shipped (and a slow answer can be placed in time).
// Bounded: at most 2,000 requests in flight and 300 s; loopback only.
import { createWriteStream } from 'node:fs';
import { Agent, request } from 'node:http';
import { z } from 'zod';

const [url, rate, seconds, idsFile] = z
  .tuple([
    z.url().refine((u) => /^http:\/\/(127\.\d+\.\d+\.\d+|localhost)[:/]/.test(u), 'loopback only'),
    z.coerce.number().int().min(1).max(20_000),
    z.coerce.number().min(0.1).max(300),
    z.string().min(1).optional(),
  ])
  .parse(process.argv.slice(2));
const body = JSON.stringify({ customer_email: 'bench@example.com', amount: '12.50' });
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const target = new URL(url);
const ids = idsFile ? createWriteStream(idsFile) : null;
const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
/** Latencies (ms) of the answers to requests sent in the whole step, and in its last third. */
const latencies: number[] = [];
const lastThird: number[] = [];
/** Requests not answered yet: request number → send time (performance.now()). */
const inflightSince = new Map<number, number>();
let sent = 0;
let errors = 0;
/** Why requests failed (the error's code, else its message): a bench artifact and a server fault look alike as a count. */
const errorKinds: Record<string, number> = {};
let non2xx = 0;
let start = 0;
const lastThirdFrom = (seconds * 1000 * 2) / 3;

function post(n: number): void {
  const t0 = performance.now();
  inflightSince.set(n, t0);
  const req = request(
    {
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(body) },
    },
    (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        inflightSince.delete(n);
        const ms = performance.now() - t0;
        latencies.push(ms);
        if (t0 - start >= lastThirdFrom) lastThird.push(ms);
        if (res.statusCode! < 200 || res.statusCode! >= 300) non2xx++;
        else ids?.write(`${/"id":"([^"]+)"/.exec(text)?.[1] ?? ''},${(performance.timeOrigin + t0).toFixed(1)},${ms.toFixed(2)}\n`);
      });
    },
  );
  req.on('error', (err: NodeJS.ErrnoException) => {
    inflightSince.delete(n);
    errors++;
    const kind = err.code ?? err.message;
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
  });
  req.end(body);
}

start = performance.now();
out({ started: performance.timeOrigin + start });
const total = Math.round(rate * seconds);
await new Promise<void>((done) => {
  const tick = setInterval(() => {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
    while (sent < due && inflightSince.size < 2000) {
      post(sent);
      sent++;
    }
    if (sent >= total || performance.now() - start > seconds * 1000 + 5000) {
      clearInterval(tick);
      done();
    }
  }, 1);
});
const sendSeconds = (performance.now() - start) / 1000;
// A Map iterates in insertion order: the first entry is the oldest request still unanswered.
const oldest = inflightSince.values().next();
out({ sent, send_seconds: sendSeconds, inflight: inflightSince.size, oldest_inflight_ms: oldest.done ? 0 : Math.round(performance.now() - oldest.value) });
// Let the last answers arrive (bounded).
const waitUntil = performance.now() + 30_000;
while (inflightSince.size > 0 && performance.now() < waitUntil) await new Promise((r) => setTimeout(r, 10));
await new Promise<void>((r) => (ids ? ids.end(r) : r()));
const figures = (l: number[]) => {
  l.sort((a, b) => a - b);
  const pct = (p: number) => Math.round((l[Math.min(l.length - 1, Math.floor((p / 100) * l.length))] ?? NaN) * 10) / 10;
  return { p50_ms: pct(50), p99_ms: pct(99), max_ms: pct(100), samples: l.length };
};
out({
  offered_per_s: rate,
  sent,
  sent_per_s: Math.round(sent / sendSeconds),
  answered: latencies.length,
  errors: errors + inflightSince.size,
  error_kinds: inflightSince.size ? { ...errorKinds, unanswered: inflightSince.size } : errorKinds,
  non_2xx: non2xx,
  ...figures(latencies),
  last_third: figures(lastThird),
});
agent.destroy();
