/**
 * npm run bench:workers -- [rates, default 100,300,1000] [step seconds, default 10]
 * The fulfillment and activity workers alone, on one nats-server and a SQLite database, fed at a
 * fixed rate what the web app would send them: per order, orders.created and orders.paid on ORDERS
 * and a FulfillOrder job on JOBS (the orders are written paid beforehand). Prints, per step, each
 * worker's CPU ms per order (from /proc) and its syscalls and voluntary context switches per order.
 * For comparing a change to the workers with the code before it, back to back: without the web app
 * and payments beside them, a worker's own cost shows with less noise than in bench:pipeline.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { connect } from 'nats';
import { z } from 'zod';
import { createEvent, OrderEvents } from '../src/events/contracts.js';
import { createJob, Jobs } from '../src/events/jobs.js';
import { publishToStream } from '../src/nats/publish.js';
import { startNatsServer } from '../src/nats/server-process.js';
import { ACTIVITY_CONSUMER, type ConsumerDefinition, FULFILLMENT_CONSUMER } from '../src/nats/topology.js';
import { eventMessage, jobMessage } from '../src/outbox/outbox.js';
import { openStorage } from '../src/storage/open.js';
import { runCli, spawnCli } from '../test/helpers/processes.js';
import { round, say, sleep } from './lib.js';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const [rates, stepS] = z
  .tuple([
    z
      .string()
      .default('100,300,1000')
      .transform((s) => s.split(',').map(Number))
      .pipe(z.array(z.number().int().positive().max(5000)).min(1)),
    z.coerce.number().min(1).max(120).default(10),
  ])
  .parse([positional[0], positional[1]]);
const ROOT = resolve(import.meta.dirname, '..');
const dir = join(ROOT, 'bench', 'tmp', `workers-${Date.now()}`);
mkdirSync(dir, { recursive: true });
const nats = await startNatsServer({ storeDir: join(dir, 'nats'), watchParent: true });
const env = { NATS_URL: nats.url, DATA_DIR: dir, DATABASE_URL: `file:${join(dir, 'o.db')}`, LOG_LEVEL: 'warn', ORDERFLOW_PRETTY: '0', NODE_ENV: 'production' };
const WORKERS = ['fulfillment', 'activity'] as const;
const setup = await runCli(['setup'], env, 60_000);
if (setup.code !== 0) throw new Error(setup.stderr);
const storage = await openStorage(env.DATABASE_URL);
const nc = await connect({ servers: nats.url });
const js = nc.jetstream();
const jsm = await nc.jetstreamManager();
const procs = WORKERS.map((w) => spawnCli(w, ['worker', w], env));

/** CPU ms, read and write syscalls, voluntary context switches of the main thread. */
function counters(pid: number) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  const field = (text: string, k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(text)?.[1] ?? 0);
  return {
    cpu_ms: (Number(f[11]) + Number(f[12])) * 10,
    syscr: field(io, 'syscr'),
    syscw: field(io, 'syscw'),
    wakeups: field(status, 'voluntary_ctxt_switches'),
  };
}
const snapshot = () => procs.map((p) => counters(p.child.pid!));

let made = 0;
async function paidOrders(count: number): Promise<string[]> {
  const ids: string[] = [];
  while (ids.length < count) {
    await storage.run(async (tx) => {
      for (let j = 0; j < 200 && ids.length < count; j++) {
        const at = new Date();
        const o = await tx.orders.insert({
          id: randomUUID(),
          reference: `W-${++made}`,
          customerEmail: 'w@example.com',
          amountCents: 100,
          currency: 'EUR',
          correlationId: randomUUID(),
          createdAt: at,
        });
        await tx.orders.transition(o.id, 'paid', { paidAt: at }, at);
        ids.push(o.id);
      }
    });
  }
  return ids;
}

const unfinished = async (c: ConsumerDefinition) => {
  const i = await jsm.consumers.info(c.stream, c.config.durable_name);
  return i.num_pending + i.num_ack_pending;
};

/** Feeds `rate` orders a second for `seconds`; resolves when both workers have settled everything. */
async function feed(rate: number, seconds: number): Promise<number> {
  const ids = await paidOrders(rate * seconds);
  const start = performance.now();
  const sends: Promise<unknown>[] = [];
  for (const [i, id] of ids.entries()) {
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    const cause = { correlationId: randomUUID() };
    const created = createEvent(
      OrderEvents.created,
      { order_id: id, reference: 'W', customer_email: 'w@example.com', amount_cents: 100, currency: 'EUR' },
      cause,
    );
    const paid = createEvent(OrderEvents.paid, { order_id: id, reference: 'W', amount_cents: 100, transaction_id: 't' }, cause);
    for (const m of [eventMessage(created), eventMessage(paid), jobMessage(Jobs.fulfillOrder, createJob(Jobs.fulfillOrder, { order_id: id }, cause))])
      sends.push(publishToStream(js, m, 30_000));
  }
  await Promise.all(sends);
  for (let i = 0; i < 1200 && (await unfinished(ACTIVITY_CONSUMER)) + (await unfinished(FULFILLMENT_CONSUMER)) > 0; i++) await sleep(100);
  return ids.length;
}

try {
  await sleep(2000);
  say('warm-up: 300 orders/s for 10 s');
  await feed(300, 10);
  for (const rate of rates) {
    await sleep(1000);
    const before = snapshot();
    const t0 = Date.now();
    const n = await feed(rate, stepS);
    const after = snapshot();
    const per = (i: number, k: keyof ReturnType<typeof counters>) => round((after[i]![k] - before[i]![k]) / n, k === 'cpu_ms' ? 3 : 2);
    process.stdout.write(
      `${rate}/s: ${n} orders settled in ${round((Date.now() - t0) / 1000, 1)} s; per order: ` +
        `${WORKERS.map((w, i) => `${w} ${per(i, 'cpu_ms')} CPU ms, ${per(i, 'syscr')} reads, ${per(i, 'syscw')} writes, ${per(i, 'wakeups')} wake-ups`).join('; ')}\n`,
    );
  }
} finally {
  await Promise.all(procs.map((p) => p.stop()));
  await nc.close();
  await storage.close();
  await nats.stop();
  rmSync(dir, { recursive: true, force: true });
}
