import { rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Jobs, jobSubject } from '../../src/events/jobs.js';
import { ORDERS_STREAM } from '../../src/nats/topology.js';
import { checkInvariants } from '../../src/orders/invariants.js';
import { waitFor } from '../helpers/stack.js';
import { BACKENDS } from './backends.js';
import { countOrders, type DriveResult, reportLine, System, type WebTally } from './harness.js';

/**
 * Fault injection: a steady stream of orders through the real processes while parts of the
 * system are broken on purpose. The scenarios run on each backend (one SQLite file shared by every
 * process; a real PostgreSQL server), each on its own system — a fresh database, nats-server and
 * processes — with two copies of each worker and two web processes. After each scenario, once the
 * system is at rest (orders final, outbox empty, consumers drained), the checker must find every
 * accepted order in the database with the outcome the payment policy gives its amount, each
 * shipment exactly once on the wire, every stored event recorded once by the activity consumer,
 * and no process crashed. The scenarios of one backend share its system, as a production system
 * lives through one fault after another: each line counts every order so far.
 */
const COPIES = 2;
const WEBS = 2;
const lines: string[] = [];
/**
 * Orders taken while NATS is away in scenario 9 (at 80/s: a 15 s outage): enough that the
 * catch-up lasts seconds at hundreds per second, so its rate is more than its start-up.
 */
const OUTAGE_ORDERS = 1200;
const OUTAGE_RATE = 80;

afterAll(() => {
  process.stdout.write(`\n${lines.join('\n')}\n`);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `web1_accepted=…` etc. for each web process, for the scenario's line. */
function perWeb(r: DriveResult, fields: (keyof WebTally)[]): Record<string, number> {
  return Object.fromEntries(r.perWeb.flatMap((t, i) => fields.map((f) => [`web${i + 1}_${f}`, t[f] ?? 0])));
}

for (const under of BACKENDS) {
  describe(`fault injection on ${under.backend.name}, ${COPIES} copies of each worker, ${WEBS} web processes`, { timeout: 180_000 }, () => {
    let sys: System;

    beforeAll(async () => {
      await under.before?.();
      sys = new System({ backend: under.backend, copies: COPIES, webs: WEBS });
      await sys.start();
    }, 300_000);
    afterAll(async () => {
      // FAULTS_LOG_DIR=dir keeps every process's output, to see the recovery at work.
      const dir = process.env.FAULTS_LOG_DIR;
      if (dir) for (const p of sys.runs) writeFileSync(join(dir, `${under.backend.name}-${p.name}-${p.child.pid}.log`), p.output());
      if (sys?.startRetries.length) lines.push(`start retries on ${under.backend.name}: ${sys.startRetries.join('; ')}`);
      await sys?.stop();
      await under.after?.();
    }, 60_000);

    async function verify(scenario: string, extra: Record<string, number | string> = {}) {
      const atRest = await sys.settle();
      const check = await sys.check();
      lines.push(reportLine(scenario, sys, check, extra));
      const violations = atRest ? check.violations : ['not at rest within the bound (orders not final, outbox or consumers pending)', ...check.violations];
      expect(violations, violations.length ? sys.outputs() : undefined).toEqual([]);
      return check;
    }

    /**
     * The load did something: no order refused (nor answered 503), at least `min` accepted (a web
     * app refusing everything would otherwise pass).
     */
    function expectLoad(r: DriveResult, min: number) {
      expect(r.refused, 'orders answered but not accepted').toBe(0);
      expect(r.unavailable, 'orders answered 503').toBe(0);
      expect(r.accepted, `accepted of ${r.sent} sent`).toBeGreaterThanOrEqual(min);
    }

    /**
     * Resolves once `n` more orders have been accepted: faults are injected on a condition, not after
     * a guess at how fast a shared machine answers. Call it first thing in a drive's `during`.
     */
    function accepted(n: number): Promise<unknown> {
      const target = sys.sent.size + n;
      return waitFor(() => sys.sent.size >= target, 30_000, `${n} orders accepted`);
    }

    it('1. a fulfillment worker is killed (SIGKILL) mid-flight and restarted', async () => {
      const r = await sys.drive(60, 40, async () => {
        await accepted(10); // mid-flight: under load, whatever the machine's speed
        // One copy dies with jobs in hand; the other keeps shipping, and gets the dead one's
        // unacked jobs once their ack wait runs out.
        await sys.kill('fulfillment-1');
        await sleep(1000);
        await sys.startProcess('fulfillment-1');
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

    it('3. the payment responders are away for a while, then start', async () => {
      await sys.kill('payments', 'SIGTERM'); // every copy: none answers
      const r = await sys.drive(30, 40);
      const pending = (await sys.storage.statusCounts()).byStatus.payment_pending ?? 0;
      await sleep(1500);
      await sys.startProcess('payments');
      expectLoad(r, r.sent);
      await verify('payments-away', { pending_while_away: pending, accepted_while_away: r.accepted });
      expect(pending).toBeGreaterThan(0);
    });

    it('4. one web process is killed (SIGKILL) right after accepting orders, the other keeps accepting, then it is restarted', async () => {
      const r = await sys.drive(40, 60, async () => {
        await accepted(3); // right after it has accepted a few
        await sys.kill('web-1');
        await sleep(500);
        await sys.startProcess('web-1');
      });
      const [killed, other] = r.perWeb as [WebTally, WebTally];
      expect(killed.refused + killed.unavailable, 'the killed web process answered but did not accept').toBe(0);
      expect(killed.accepted + killed.failed).toBe(killed.sent);
      // The other web process answered every order it was sent, the whole time.
      expect(other, 'the web process left running').toEqual({ ...other, accepted: other.sent, refused: 0, unavailable: 0, failed: 0 });
      // and once it is back both take every order again
      const after = await sys.drive(20, 40);
      expectLoad(after, after.sent);
      await verify('kill-web', { ...perWeb(r, ['accepted', 'failed']), accepted_after_restart: after.accepted });
      expect(r.accepted, 'orders accepted around the kill').toBeGreaterThanOrEqual(3);
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
        // id), twice each: the fulfilment inbox must absorb them, whichever copy takes them.
        const shippedIds = new Set((await sys.db.selectFrom('orders').select('id').where('status', '=', 'shipped').execute()).map((o) => o.id));
        const jobs = (await sys.db.selectFrom('outbox').select(['subject', 'payload']).where('subject', '=', jobSubject(Jobs.fulfillOrder)).execute())
          .filter((j) => shippedIds.has((JSON.parse(j.payload) as { payload: { order_id: string } }).payload.order_id))
          .slice(0, 30);
        for (const j of jobs) {
          const data = new TextEncoder().encode(j.payload);
          await js.publish(j.subject, data);
          await js.publish(j.subject, data);
        }
        // and a forced redelivery: every activity worker dies with messages in hand.
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
        // and the system still takes orders
        expect(await sys.postOrder('3.00')).toBe('accepted');
        const check = await verify('poison', { poison_published: poison, dead_lettered: dead });
        expect(dead).toBe(poison);
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

    it.runIf(under.restart)('8. the database server is stopped under load for a few seconds, then started', async () => {
      const restart = under.restart!;
      const deadBefore = await sys.deadLetters();
      let awayMs = 0;
      const r = await sys.drive(200, 40, async () => {
        await accepted(10);
        awayMs = await restart(3000);
      });
      // Every order was answered: 201, or 503 while the database was away (refused by design:
      // nothing promised), never another error and never silence.
      expect(r.refused, 'orders answered neither 201 nor 503').toBe(0);
      expect(r.failed, 'orders without an answer').toBe(0);
      expect(r.unavailable, 'orders answered 503 while the database was away').toBeGreaterThan(0);
      expect(r.accepted, 'orders accepted before the stop').toBeGreaterThanOrEqual(10);
      // Once it is back, every order is taken again, by both web processes.
      const after = await waitFor(
        async () => {
          const a = await sys.drive(20, 40);
          return a.accepted === a.sent ? a : null;
        },
        30_000,
        'every order accepted again after the restart',
      );
      expectLoad(after, after.sent);
      // The workers resume by themselves: verify waits for every order to be final and every
      // consumer drained, and no process may have exited.
      const check = await verify('restart-database', {
        refused_by_design: r.unavailable,
        accepted_during_restart: r.accepted,
        away_ms: awayMs,
        accepted_after_restart: after.accepted,
        dead_lettered: (await sys.deadLetters()) - deadBefore,
      });
      expect(check.lost).toBe(0);
      expect((await sys.deadLetters()) - deadBefore, 'good messages dead-lettered while the database was away').toBe(0);
    });

    it("9. nats-server is away for a while under load; what waited clears at the pipeline's pace, not on retry timers", async () => {
      // Orders keep coming while NATS is away: each waits as payment_pending with its own retry
      // timer (which grows while the outage lasts). Once NATS is back, the catch-up rate is the
      // orders that waited over the time until every one of them is final; the steady rate leaves
      // out the start (nats-server starting, clients reconnecting) and the tail: the orders
      // between the 10th and the 90th percent finished, over the time they took.
      await sys.nats.stop();
      const away = performance.now();
      const r = await sys.drive(OUTAGE_ORDERS, OUTAGE_RATE);
      const awayMs = Math.round(performance.now() - away);
      const before = await checkInvariants(sys.storage);
      const waiting = before.accepted - before.final;
      const cpuBefore = await sys.cpuMs();
      const back = performance.now();
      await sys.startNats();
      const natsUpS = (performance.now() - back) / 1000;
      /** When the first order finished after the outage, and when 10 % and 90 % of those waiting had. */
      const reached: { first?: number; p10?: number; p90?: number } = {};
      await waitFor(
        async () => {
          const done = (await countOrders(sys.db, 'final')) - before.final;
          const t = (performance.now() - back) / 1000;
          if (done > 0) reached.first ??= t;
          if (done >= waiting * 0.1) reached.p10 ??= t;
          if (done >= waiting * 0.9) reached.p90 ??= t;
          return done === waiting;
        },
        120_000,
        'every order that waited out the outage final',
      );
      const catchUpS = (performance.now() - back) / 1000;
      // What the catch-up cost the system, per order: the rate the machine's cores could reach.
      const cpuAfter = await sys.cpuMs();
      const cpuByKind = Object.entries(cpuAfter).map(([kind, ms]) => [kind, (ms - (cpuBefore[kind] ?? 0)) / waiting] as const);
      const cpuPerOrder = cpuByKind.reduce((sum, [, ms]) => sum + ms, 0);
      expectLoad(r, r.sent);
      const s1 = (x: number | undefined) => Math.round((x ?? 0) * 10) / 10;
      await verify('nats-outage-catch-up', {
        away_ms: awayMs,
        waiting,
        nats_up_s: s1(natsUpS),
        first_final_s: s1(reached.first),
        catch_up_s: s1(catchUpS),
        catch_up_per_s: Math.round(waiting / catchUpS),
        steady_per_s: Math.round((waiting * 0.8) / Math.max(0.1, (reached.p90 ?? catchUpS) - (reached.p10 ?? 0))),
        cpu_ms_per_order: Math.round(cpuPerOrder * 10) / 10,
        // The rate this machine's cores would allow if the catch-up had them to itself.
        cpu_bound_per_s: Math.round((availableParallelism() * 1000) / cpuPerOrder),
        cpu_ms_per_order_by: cpuByKind.map(([kind, ms]) => `${kind}:${Math.round(ms * 10) / 10}`).join(','),
      });
      expect(waiting, 'orders waited for NATS').toBeGreaterThan(OUTAGE_ORDERS / 2);
    });
  });
}
