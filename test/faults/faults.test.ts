import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Jobs, jobSubject } from '../../src/events/jobs.js';
import { ORDERS_STREAM } from '../../src/nats/topology.js';
import { checkInvariants } from '../../src/orders/invariants.js';
import { waitFor } from '../helpers/stack.js';
import { type DriveResult, reportLine, System } from './harness.js';

/**
 * Fault injection: a steady stream of orders through the real processes while parts of the
 * system are broken on purpose. After each scenario, once the system is at rest (orders final,
 * outbox empty, consumers drained), the checker must find every accepted order in the database
 * with the outcome the payment policy gives its amount, each shipment exactly once on the wire,
 * every stored event recorded once by the activity consumer, and no process crashed.
 */
const sys = new System();
const lines: string[] = [];

beforeAll(() => sys.start(), 300_000);
afterAll(async () => {
  process.stdout.write(`\n${lines.join('\n')}\n`);
  // FAULTS_LOG_DIR=dir keeps every process's output, to see the recovery at work.
  if (process.env.FAULTS_LOG_DIR) for (const p of sys.runs) writeFileSync(join(process.env.FAULTS_LOG_DIR, `${p.name}-${p.child.pid}.log`), p.output());
  await sys.stop();
});

async function verify(scenario: string, extra: Record<string, number | string> = {}) {
  const atRest = await sys.settle();
  const check = await sys.check();
  lines.push(reportLine(scenario, check, extra));
  const violations = atRest ? check.violations : ['not at rest within the bound (orders not final, outbox or consumers pending)', ...check.violations];
  expect(violations, violations.length ? sys.outputs() : undefined).toEqual([]);
  return check;
}

/** The load did something: no order refused, at least `min` accepted (a web app refusing everything would otherwise pass). */
function expectLoad(r: DriveResult, min: number) {
  expect(r.refused, 'orders answered but not accepted').toBe(0);
  expect(r.accepted, `accepted of ${r.sent} sent`).toBeGreaterThanOrEqual(min);
}

/** Orders taken while NATS is away in scenario 8 (at 60/s: a 10 s outage). */
const OUTAGE_ORDERS = 600;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Resolves once `n` more orders have been accepted: faults are injected on a condition, not after
 * a guess at how fast a shared machine answers. Call it first thing in a drive's `during`.
 */
function accepted(n: number): Promise<unknown> {
  const target = sys.sent.size + n;
  return waitFor(() => sys.sent.size >= target, 30_000, `${n} orders accepted`);
}

describe('fault injection', { timeout: 180_000 }, () => {
  it('1. the fulfillment worker is killed (SIGKILL) mid-flight and restarted', async () => {
    const r = await sys.drive(60, 40, async () => {
      await accepted(10); // mid-flight: under load, whatever the machine's speed
      await sys.kill('fulfillment');
      await sleep(1000);
      await sys.startProcess('fulfillment');
    });
    expectLoad(r, r.sent);
    await verify('kill-fulfillment');
  });

  it('2. nats-server is stopped and restarted (same store) under load', async () => {
    const r = await sys.drive(60, 40, async () => {
      await accepted(10);
      await sys.nats.stop();
      await sleep(1500);
      await sys.startNats();
    });
    // Orders are taken while NATS is away: they wait in the outbox and as payment_pending.
    expectLoad(r, r.sent);
    await verify('restart-nats');
  });

  it('3. the payment responder is away for a while, then starts', async () => {
    await sys.kill('payments', 'SIGTERM');
    const r = await sys.drive(30, 40);
    const pending = (await sys.storage.statusCounts()).byStatus.payment_pending ?? 0;
    await sleep(1500);
    await sys.startProcess('payments');
    expectLoad(r, r.sent);
    await verify('payments-away', { pending_while_away: pending, accepted_while_away: r.accepted });
    expect(pending).toBeGreaterThan(0);
  });

  it('4. the web process is killed (SIGKILL) right after accepting orders, then restarted', async () => {
    const r = await sys.drive(40, 60, async () => {
      await accepted(3); // right after it has accepted a few
      await sys.kill('web');
      await sleep(500);
      await sys.startProcess('web');
    });
    expect(r.refused).toBe(0);
    expect(r.accepted + r.failed).toBe(r.sent);
    // and once it is back it takes every order again
    const after = await sys.drive(20, 40);
    expectLoad(after, after.sent);
    await verify('kill-web', { accepted_before_kill: r.accepted, unanswered: r.failed, accepted_after_restart: after.accepted });
    expect(r.accepted, 'orders accepted before the kill').toBeGreaterThanOrEqual(3);
  });

  it('5. the same events and jobs are delivered twice', async () => {
    const nc = await sys.connect();
    try {
      const js = nc.jetstream();
      const jsm = await nc.jetstreamManager();
      const { state } = await jsm.streams.info(ORDERS_STREAM);
      let republished = 0;
      // Every stored order event again, without a Nats-Msg-Id, so JetStream stores the copy too:
      // the same event ids, so the wire count must see copies, not new shipments.
      for (let seq = Math.max(state.first_seq, state.last_seq - 150); seq <= state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(ORDERS_STREAM, { seq }).catch(() => null);
        if (!m) continue;
        await js.publish(m.subject, m.data);
        republished++;
      }
      // Shipped orders' own FulfillOrder jobs again (the bytes from the outbox, so the same job
      // id), twice each: the fulfilment inbox must absorb them.
      const shippedIds = new Set((await sys.db.selectFrom('orders').select('id').where('status', '=', 'shipped').execute()).map((o) => o.id));
      const jobs = (await sys.db.selectFrom('outbox').select(['subject', 'payload']).where('subject', '=', jobSubject(Jobs.fulfillOrder)).execute())
        .filter((j) => shippedIds.has((JSON.parse(j.payload) as { payload: { order_id: string } }).payload.order_id))
        .slice(0, 30);
      for (const j of jobs) {
        const data = new TextEncoder().encode(j.payload);
        await js.publish(j.subject, data);
        await js.publish(j.subject, data);
      }
      // and a forced redelivery: the activity worker dies with messages in hand.
      await sys.kill('activity');
      await sys.startProcess('activity');
      // verify waits until both consumers have nothing pending or unacked: the copies were consumed.
      const check = await verify('duplicates', { republished_events: republished, duplicate_jobs: jobs.length * 2 });
      expect(jobs.length).toBeGreaterThan(0);
      expect(check.wireCopies, 'the republished copies were seen on the wire').toBeGreaterThanOrEqual(republished);
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
        const deadline = Date.now() + 60_000;
        for (;;) {
          const n = (await sys.deadLetters()) - before;
          if (n >= poison || Date.now() > deadline) return n;
          await sleep(200);
        }
      })();
      const check = await verify('poison', { poison_published: poison, dead_lettered: dead });
      expect(dead).toBe(poison);
      // and the system still takes orders
      expect(await sys.postOrder('3.00')).toBe('accepted');
      expect(check.report.accepted).toBeGreaterThan(0);
    } finally {
      await nc.close();
    }
  });

  it("7. nats-server's store is wiped while orders are in flight, and it starts empty", async () => {
    const r = await sys.drive(40, 40, async () => {
      await accepted(8);
      await sys.nats.child.kill('SIGKILL');
      await sys.nats.stop();
      rmSync(sys.storeDir, { recursive: true, force: true });
      await sleep(500);
      await sys.startNats();
    });
    expectLoad(r, r.sent);
    await verify('wipe-store');
  });

  it("8. nats-server is away for a while under load; what waited clears at the pipeline's pace, not on retry timers", async () => {
    // Orders keep coming while NATS is away: each waits as payment_pending with its own retry
    // timer (which grows while the outage lasts). Once NATS is back, the catch-up rate is the
    // orders that waited over the time until every one of them is final.
    await sys.nats.stop();
    const away = performance.now();
    const r = await sys.drive(OUTAGE_ORDERS, 60);
    const awayMs = Math.round(performance.now() - away);
    const before = await checkInvariants(sys.storage);
    const waiting = before.accepted - before.final;
    const back = performance.now();
    await sys.startNats();
    await waitFor(
      async () => {
        const now = await checkInvariants(sys.storage);
        return now.final === now.accepted;
      },
      120_000,
      'every order that waited out the outage final',
    );
    const catchUpS = (performance.now() - back) / 1000;
    expectLoad(r, r.sent);
    await verify('nats-outage-catch-up', {
      away_ms: awayMs,
      waiting,
      catch_up_s: Math.round(catchUpS * 10) / 10,
      catch_up_per_s: Math.round(waiting / catchUpS),
    });
    expect(waiting, 'orders waited for NATS').toBeGreaterThan(OUTAGE_ORDERS / 2);
  });
});
