import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJob, Jobs, jobSubject } from '../../src/events/jobs.js';
import { ORDERS_STREAM } from '../../src/nats/topology.js';
import { reportLine, System } from './harness.js';

/**
 * Fault injection: a steady stream of orders through the real processes while parts of the
 * system are broken on purpose. After each scenario the invariant checker must find every
 * accepted order final, none shipped twice, no duplicate activity, and no process crashed.
 */
const sys = new System();
const lines: string[] = [];

beforeAll(() => sys.start(), 120_000);
afterAll(async () => {
  process.stdout.write(`\n${lines.join('\n')}\n`);
  // FAULTS_LOG_DIR=dir keeps every process's output, to see the recovery at work.
  if (process.env.FAULTS_LOG_DIR) for (const p of sys.procs.values()) writeFileSync(join(process.env.FAULTS_LOG_DIR, `${p.name}.log`), p.output());
  await sys.stop();
});

async function verify(scenario: string, extra: Record<string, number | string> = {}) {
  const report = await sys.settle();
  const crashed = sys.crashed();
  lines.push(reportLine(scenario, report, { ...extra, crashed: crashed.length }));
  expect(report.final).toBe(report.accepted);
  for (const id of sys.accepted) expect(await sys.db.order.count({ where: { id } }), `accepted order ${id} is in the database`).toBe(1);
  expect(report.shippedTwice).toBe(0);
  expect(report.duplicateActivity).toBe(0);
  expect(crashed).toEqual([]);
  return report;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fault injection', { timeout: 180_000 }, () => {
  it('1. the fulfillment worker is killed (SIGKILL) mid-flight and restarted', async () => {
    await sys.drive(60, 40, async () => {
      await sleep(600);
      await sys.kill('fulfillment');
      await sleep(1000);
      await sys.startProcess('fulfillment');
    });
    await verify('kill-fulfillment');
  });

  it('2. nats-server is stopped and restarted (same store) under load', async () => {
    await sys.drive(60, 40, async () => {
      await sleep(500);
      await sys.nats.stop();
      await sleep(1500);
      await sys.startNats();
    });
    await verify('restart-nats');
  });

  it('3. the payment responder is away for a while, then starts', async () => {
    await sys.kill('payments', 'SIGTERM');
    const r = await sys.drive(30, 40);
    const pending = await sys.db.order.count({ where: { status: 'payment_pending' } });
    await sleep(1500);
    await sys.startProcess('payments');
    await verify('payments-away', { pending_while_away: pending, accepted_while_away: r.accepted });
    expect(pending).toBeGreaterThan(0);
  });

  it('4. the web process is killed (SIGKILL) right after accepting orders, then restarted', async () => {
    await sys.drive(40, 60, async () => {
      await sleep(300);
      await sys.kill('web');
      await sleep(500);
      await sys.startProcess('web');
    });
    await verify('kill-web');
  });

  it('5. the same events and jobs are delivered twice', async () => {
    const nc = await sys.connect();
    try {
      const js = nc.jetstream();
      const jsm = await nc.jetstreamManager();
      const { state } = await jsm.streams.info(ORDERS_STREAM);
      let republished = 0;
      // Every stored order event again, without a Nats-Msg-Id, so JetStream stores the copy too.
      for (let seq = Math.max(state.first_seq, state.last_seq - 150); seq <= state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(ORDERS_STREAM, { seq }).catch(() => null);
        if (!m) continue;
        await js.publish(m.subject, m.data);
        republished++;
      }
      // Shipped orders' FulfillOrder jobs again, twice each, with the same job id.
      const shipped = await sys.db.order.findMany({ where: { status: 'shipped' }, take: 30 });
      for (const o of shipped) {
        const job = createJob(Jobs.fulfillOrder, { order_id: o.id }, { correlationId: o.correlationId });
        const data = new TextEncoder().encode(JSON.stringify(job));
        await js.publish(jobSubject(Jobs.fulfillOrder), data);
        await js.publish(jobSubject(Jobs.fulfillOrder), data);
      }
      // and a forced redelivery: the activity worker dies with messages in hand.
      await sys.kill('activity');
      await sys.startProcess('activity');
      await sleep(1500);
      await verify('duplicates', { republished_events: republished, duplicate_jobs: shipped.length * 2 });
    } finally {
      await nc.close();
    }
  });

  it('6. malformed messages on every subject orderflow listens on go to the dead letters', async () => {
    const before = await sys.deadLetters();
    const nc = await sys.connect();
    let poison = 0;
    try {
      const js = nc.jetstream();
      const oversized = new Uint8Array(100 * 1024).fill(120);
      const bad = [new TextEncoder().encode('\u0000\u00ff garbage {'), new TextEncoder().encode(JSON.stringify({ event_id: 'nope', data: {} })), oversized];
      for (const subject of ['orders.created', 'orders.paid', 'orders.declined', 'orders.shipped', jobSubject(Jobs.fulfillOrder)]) {
        for (const data of bad) {
          await js.publish(subject, data);
          poison++;
        }
      }
      for (const data of bad) {
        const reply = await nc.request('payments.validate', data, { timeout: 3000 });
        expect(reply.headers?.get('Nats-Service-Error-Code')).toBe('400');
        poison++;
      }
      const dead = await (async () => {
        const deadline = Date.now() + 15_000;
        for (;;) {
          const n = (await sys.deadLetters()) - before;
          if (n >= poison || Date.now() > deadline) return n;
          await sleep(200);
        }
      })();
      const report = await verify('poison', { poison_published: poison, dead_lettered: dead });
      expect(dead).toBe(poison);
      // and the system still takes orders
      expect(await sys.postOrder('3.00')).toBe('accepted');
      expect(report.accepted).toBeGreaterThan(0);
    } finally {
      await nc.close();
    }
  });

  it("7. nats-server's store is wiped while orders are in flight, and it starts empty", async () => {
    await sys.drive(40, 40, async () => {
      await sleep(400);
      await sys.nats.child.kill('SIGKILL');
      await sys.nats.stop();
      rmSync(sys.storeDir, { recursive: true, force: true });
      await sleep(500);
      await sys.startNats();
    });
    await verify('wipe-store');
  });
});
