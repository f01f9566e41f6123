// An open-loop load: POSTs `rate` orders a second, evenly spread (a 1 ms schedule), for
// `seconds`, whatever the server's answers are doing — unlike autocannon's rate mode, which sends
// each connection's quota in a burst at the start of every second. Prints one JSON line.
// Bounded: at most 2,000 requests in flight and 60 s; loopback only.
import { Agent, request } from 'node:http';
import { z } from 'zod';

const [url, rate, seconds] = z
  .tuple([z.url().refine((u) => /^http:\/\/(127\.\d+\.\d+\.\d+|localhost)[:/]/.test(u), 'loopback only'), z.coerce.number().int().min(1).max(20_000), z.coerce.number().min(0.1).max(60)])
  .parse(process.argv.slice(2));
const body = JSON.stringify({ customer_email: 'bench@example.com', amount: '12.50' });
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const target = new URL(url);
const latencies: number[] = [];
let sent = 0;
let errors = 0;
let non2xx = 0;
let inflight = 0;

function post(): void {
  const t0 = performance.now();
  inflight++;
  const req = request(
    { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(body) } },
    (res) => {
      res.resume();
      res.on('end', () => {
        inflight--;
        latencies.push(performance.now() - t0);
        if (res.statusCode! < 200 || res.statusCode! >= 300) non2xx++;
      });
    },
  );
  req.on('error', () => {
    inflight--;
    errors++;
  });
  req.end(body);
}

const start = performance.now();
const total = Math.round(rate * seconds);
await new Promise<void>((done) => {
  const tick = setInterval(() => {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
    while (sent < due && inflight < 2000) {
      post();
      sent++;
    }
    if (sent >= total || performance.now() - start > seconds * 1000 + 5000) {
      clearInterval(tick);
      done();
    }
  }, 1);
});
const sendSeconds = (performance.now() - start) / 1000;
// Let the last answers arrive (bounded).
const waitUntil = performance.now() + 30_000;
while (inflight > 0 && performance.now() < waitUntil) await new Promise((r) => setTimeout(r, 10));
latencies.sort((a, b) => a - b);
const pct = (p: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN) * 10) / 10;
process.stdout.write(
  `${JSON.stringify({ offered_per_s: rate, sent, sent_per_s: Math.round(sent / sendSeconds), answered: latencies.length, errors: errors + inflight, non_2xx: non2xx, p50_ms: pct(50), p99_ms: pct(99), max_ms: pct(100) })}\n`,
);
agent.destroy();
