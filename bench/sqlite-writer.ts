/**
 * npx tsx bench/sqlite-writer.ts [rates, default 300,1000,1500] [step seconds, default 5] [--root=DIR]
 *
 * The SQLite write path alone: three processes on one database file doing the units of work the
 * pipeline does per order, through the real storage (openStorage), without NATS or HTTP:
 * - web: insert the order and its orders.created row; transition it to paid with orders.paid and
 *   the fulfilment job; mark each batch published (within 50 ms), as the relay does.
 * - fulfillment: read an order, then the inbox row, the shipped transition and orders.shipped in
 *   one unit; mark it published (the orders it ships are seeded paid before the step).
 * - activity: three timeline rows (within 10 ms).
 * Each process offers its units at the step's rate (open loop), so lock contention between them
 * is real. Prints per process: units committed, latency of the units a caller waits on, CPU ms
 * per order, and the writer's counters (flushes, busy retries, lock-hold ms) where the storage
 * has them; and the largest WAL seen. `--root` runs another checkout's storage (say the commit
 * before a change) with this same load, for back-to-back comparisons.
 */
import { fork } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';

type Role = 'web' | 'fulfillment' | 'activity';
const ROLES: Role[] = ['web', 'fulfillment', 'activity'];

interface Report {
  role: Role;
  orders: number;
  units: number;
  failed: number;
  /** The first few reasons units failed. */
  errors: string[];
  lat: number[];
  cpuMs: number;
  writer?: Record<string, number>;
}

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const root = resolve(arg('root') ?? resolve(import.meta.dirname, '..'));
const load = async <T>(rel: string): Promise<T> => (await import(pathToFileURL(join(root, rel)).href)) as T;

interface Deps {
  openStorage: (url: string) => Promise<import('../src/orders/ports.js').Storage & { stats?: () => Record<string, number> }>;
  newOrder: typeof import('../src/orders/order.js').newOrder;
  createEvent: typeof import('../src/events/contracts.js').createEvent;
  OrderEvents: typeof import('../src/events/contracts.js').OrderEvents;
  eventMessage: typeof import('../src/outbox/outbox.js').eventMessage;
  activityRow: typeof import('../src/orders/activity.js').activityRow;
}

async function deps(): Promise<Deps> {
  const [open, order, contracts, outbox, activity] = await Promise.all([
    load<{ openStorage: Deps['openStorage'] }>('src/storage/open.ts'),
    load<typeof import('../src/orders/order.js')>('src/orders/order.ts'),
    load<typeof import('../src/events/contracts.js')>('src/events/contracts.ts'),
    load<typeof import('../src/outbox/outbox.js')>('src/outbox/outbox.ts'),
    load<typeof import('../src/orders/activity.js')>('src/orders/activity.ts'),
  ]);
  return {
    openStorage: open.openStorage,
    newOrder: order.newOrder,
    createEvent: contracts.createEvent,
    OrderEvents: contracts.OrderEvents,
    eventMessage: outbox.eventMessage,
    activityRow: activity.activityRow,
  };
}

const seedId = (i: number) => `seed-${String(i).padStart(8, '0')}`;

async function child(role: Role, url: string, rate: number, seconds: number, seedFrom: number): Promise<void> {
  const d = await deps();
  const storage = await d.openStorage(url);
  const n = Math.round(rate * seconds);
  const lat: number[] = [];
  let units = 0;
  let failed = 0;
  const errors = new Set<string>();
  const fail = (err: unknown) => {
    failed++;
    if (errors.size < 3) errors.add((err as Error).message);
  };
  const waits: Promise<unknown>[] = [];
  const timed = async <T>(p: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const v = await p();
    lat.push(performance.now() - t);
    return v;
  };
  const count = (p: Promise<unknown>) => waits.push(p.then(() => units++, fail));
  const mark = (ids: string[]) => count(storage.run((tx) => tx.outbox.markPublished(ids, new Date()), { within: 50 }));
  const one = async (i: number) => {
    if (role === 'web') {
      const o = d.newOrder({ customerEmail: 'bench@example.com', amountCents: 1250, correlationId: `c-${i}` });
      const created = d.eventMessage(
        d.createEvent(
          d.OrderEvents.created,
          { order_id: o.id, reference: o.reference, customer_email: o.customerEmail, amount_cents: 1250, currency: 'USD' },
          { correlationId: `c-${i}` },
        ),
      );
      const order = await timed(() =>
        storage.run(async (tx) => {
          const row = await tx.orders.insert(o);
          await tx.outbox.add([created], row.createdAt);
          return row;
        }),
      );
      units++;
      mark([created.id]);
      const now = new Date();
      const paid = [
        d.eventMessage(
          d.createEvent(
            d.OrderEvents.paid,
            { order_id: o.id, reference: o.reference, amount_cents: 1250, transaction_id: `tx-${i}` },
            { correlationId: `c-${i}` },
          ),
        ),
        d.eventMessage(
          d.createEvent(
            d.OrderEvents.paid,
            { order_id: o.id, reference: o.reference, amount_cents: 1250, transaction_id: `job-${i}` },
            { correlationId: `c-${i}` },
          ),
        ),
      ];
      await timed(() =>
        storage.run(async (tx) => {
          const updated = await tx.orders.transition(
            order.id,
            'paid',
            { paymentResponse: '{"approved":true}', paymentError: null, incrementAttempts: true, nextAttemptAt: null, paidAt: now },
            now,
          );
          await tx.outbox.add(paid, now);
          return updated;
        }),
      );
      units++;
      mark(paid.map((m) => m.id));
    } else if (role === 'fulfillment') {
      const id = seedId(seedFrom + i);
      const current = await storage.order(id);
      if (!current) throw new Error(`seeded order ${id} is missing`);
      const at = new Date();
      const shipped = d.eventMessage(
        d.createEvent(d.OrderEvents.shipped, { order_id: id, reference: current.reference, shipped_at: at.toISOString() }, { correlationId: `c-${i}` }),
      );
      await timed(() =>
        storage.run(async (tx) => {
          if (!(await tx.inbox.record('fulfillment', `job-${id}`, at))) return null;
          const o = await tx.orders.transition(id, 'shipped', { shippedAt: at, nextAttemptAt: null }, at);
          await tx.outbox.add([shipped], at);
          return o;
        }),
      );
      units++;
      mark([shipped.id]);
    } else {
      for (const subject of ['orders.created', 'orders.paid', 'orders.shipped'] as const) {
        const event = d.createEvent(
          d.OrderEvents.created,
          { order_id: `o-${i}`, reference: 'ORD-BENCH000', customer_email: 'b@example.com', amount_cents: 1, currency: 'USD' },
          { correlationId: `c-${i}` },
        );
        count(storage.run((tx) => tx.activity.record(d.activityRow('activity', subject, event)), { within: 10 }));
      }
    }
  };
  process.send!({ ready: true });
  const startAt = await new Promise<number>((r) => process.once('message', (m: { go: number }) => r(m.go)));
  await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const stats0 = storage.stats?.();
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < n; ) {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    for (; i < Math.min(due + 1, n); i++) inFlight.push(one(i).catch(fail));
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(inFlight);
  await Promise.all(waits);
  const cpu = process.cpuUsage(cpu0);
  const stats1 = storage.stats?.();
  const writer = stats0 && stats1 ? Object.fromEntries(Object.entries(stats1).map(([k, v]) => [k, v - (stats0[k] ?? 0)])) : undefined;
  await storage.close();
  const report: Report = { role, orders: n, units, failed, errors: [...errors], lat, cpuMs: (cpu.user + cpu.system) / 1000, ...(writer ? { writer } : {}) };
  process.send!(report);
  process.disconnect();
}

async function seed(url: string, from: number, count: number): Promise<void> {
  const d = await deps();
  const storage = await d.openStorage(url);
  const at = new Date();
  for (let i = 0; i < count; i += 500) {
    await storage.run(async (tx) => {
      for (let j = i; j < Math.min(count, i + 500); j++) {
        const o = { ...d.newOrder({ customerEmail: 'seed@example.com', amountCents: 1250, correlationId: 'seed' }), id: seedId(from + j) };
        await tx.orders.insert(o);
        await tx.orders.transition(o.id, 'paid', { paidAt: at, nextAttemptAt: null }, at);
      }
    });
  }
  await storage.close();
}

const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN);
const r2 = (x: number) => Math.round(x * 100) / 100;

async function step(url: string, file: string, rate: number, seconds: number, seedFrom: number): Promise<void> {
  const kids = ROLES.map((role) =>
    fork(import.meta.filename, ['--child', role, url, String(rate), String(seconds), String(seedFrom), `--root=${root}`], { execArgv: ['--import', 'tsx'] }),
  );
  await Promise.all(kids.map((k) => new Promise((r) => k.once('message', r))));
  const go = Date.now() + 200;
  for (const k of kids) k.send({ go });
  // The WAL's length in frames (a NOOP checkpoint only reads it), not its file's size: the file is
  // reused from its start after a restart, so its size is the high-water mark.
  const look = new Database(file, { readonly: true });
  let walMax = 0;
  const sampler = setInterval(() => {
    const [wal] = look.pragma('wal_checkpoint(NOOP)') as { log: number }[];
    walMax = Math.max(walMax, wal?.log ?? 0);
  }, 20);
  const reports = await Promise.all(
    kids.map(
      (k) =>
        new Promise<Report>((ok, fail) => {
          k.on('message', (m: Report | { ready: true }) => 'role' in m && ok(m));
          k.once('exit', (code) => code !== 0 && fail(new Error(`child exited ${code}`)));
        }),
    ),
  );
  clearInterval(sampler);
  look.close();
  const mb = (bytes: number) => r2(bytes / 2 ** 20);
  process.stdout.write(
    `${rate}/s for ${seconds} s: WAL at most ${walMax} frames (${mb(walMax * 4096)} MB; file ${mb(statSync(`${file}-wal`).size)} MB), database ${mb(statSync(file).size)} MB\n`,
  );
  for (const r of reports) {
    const lat = r.lat.sort((a, b) => a - b);
    const w = r.writer;
    const per = (k: string) => (w ? r2((w[k] ?? 0) / seconds) : '-');
    process.stdout.write(
      `  ${r.role.padEnd(11)} units ${r.units} failed ${r.failed}; wait p50 ${r2(pct(lat, 50))} p99 ${r2(pct(lat, 99))} max ${r2(lat.at(-1) ?? NaN)} ms; ` +
        `CPU ${r2(r.cpuMs / r.orders)} ms/order; per s: flushes ${per('flushes')}, busy ${per('busy')} (wait ms ${per('waitMs')}), lock ms ${per('lockMs')} (commit ${per('commitMs')}${w && 'lockCpuMs' in w ? `, cpu ${per('lockCpuMs')}` : ''})` +
        (w && 'checkpoints' in w ? `, checkpoints ${per('checkpoints')}, restarts ${per('restarts')}` : '') +
        '\n' +
        (r.errors.length ? `    failures: ${r.errors.join(' | ')}\n` : ''),
    );
  }
}

if (process.argv[2] === '--child') {
  const [, , , role, url, rate, seconds, seedFrom] = process.argv;
  await child(role as Role, url!, Number(rate), Number(seconds), Number(seedFrom));
} else {
  const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const rates = (positional[0] ?? '300,1000,1500').split(',').map(Number);
  const seconds = Number(positional[1] ?? 5);
  const dir = join(import.meta.dirname, 'tmp', `sqlite-writer-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'bench.db');
  const url = `file:${file}`;
  try {
    const { migrate } = await load<{ migrate: (url: string) => unknown }>('src/storage/sqlite/migrate.ts');
    migrate(url);
    let seedFrom = 0;
    for (const rate of rates) {
      const n = Math.round(rate * seconds);
      await seed(url, seedFrom, n);
      await step(url, file, rate, seconds, seedFrom);
      seedFrom += n;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
