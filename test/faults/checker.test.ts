import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, type Envelope, MetricEvents, OrderEvents, PaymentsValidate, parseEvent } from '../../src/events/contracts.js';
import { encodeJson, eventHeaders } from '../../src/nats/codec.js';
import { publishToStream } from '../../src/nats/publish.js';
import { ORDERS_STREAM } from '../../src/nats/topology.js';
import { eventMessage } from '../../src/outbox/outbox.js';
import { spawnProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/stack.js';
import { type Check, System } from './harness.js';

/**
 * A check that has never failed proves nothing: each invariant of the fault suite's checker is
 * shown a real violation — on the real processes, a real nats-server and the real database — and
 * must report it. The violations accumulate in this one system, so each test looks for its own.
 */
const sys = new System();
beforeAll(() => sys.start(), 300_000);
afterAll(() => sys.stop());

const at = async (): Promise<Check> => {
  expect(await sys.settle(), 'system at rest').toBe(true);
  return sys.check();
};

/** A fresh order through the web app, once it is shipped or declined. */
async function placed(amount: string): Promise<string> {
  const before = new Set(sys.sent.keys());
  expect(await sys.postOrder(amount)).toBe('accepted');
  const id = [...sys.sent.keys()].find((k) => !before.has(k))!;
  await waitFor(async () => ['shipped', 'payment_declined'].includes((await sys.storage.order(id))?.status ?? ''), 30_000, 'order final');
  return id;
}

async function storedShipped(orderId: string): Promise<Envelope> {
  const events = await sys.watch.readOrders();
  return events.find((e) => e.type === OrderEvents.shipped.subject && (e.data as { order_id: string }).order_id === orderId)!;
}

describe('the fault-suite checker reports real violations', { timeout: 120_000 }, () => {
  it('passes a healthy system (the control)', async () => {
    const r = await sys.drive(10, 20);
    expect(r.accepted).toBe(10);
    const c = await at();
    expect(c.violations).toEqual([]);
    expect(c.wire.shippedOnWire).toBe(9);
    expect(c.expectedShipped).toBe(9);
    expect(c.expectedDeclined).toBe(1);
  });

  it('does not count a republished copy (same event id) as a second shipment', async () => {
    const id = await placed('5.00');
    const shipped = await waitFor(() => storedShipped(id), 15_000, 'orders.shipped stored');
    const copiesBefore = sys.watch.copies;
    // Without a Nats-Msg-Id, so JetStream stores the copy too: redelivery, not a new shipment.
    await sys.watch.nc.jetstream().publish(OrderEvents.shipped.subject, encodeJson(shipped));
    await waitFor(() => sys.watch.copies > copiesBefore, 10_000, 'the copy seen on the wire');
    const c = await at();
    expect(c.wire.shippedTwice).toBe(0);
    expect(c.violations).toEqual([]);
  });

  it('a second orders.shipped with a new event id: shipped twice, on the wire and in the activity records', async () => {
    const id = await placed('6.00');
    const first = await waitFor(() => storedShipped(id), 15_000, 'orders.shipped stored');
    const second = createEvent(OrderEvents.shipped, first.data as { order_id: string; reference: string; shipped_at: string }, {
      correlationId: first.correlation_id,
    });
    await publishToStream(sys.watch.nc.jetstream(), eventMessage(second));
    const c = await at();
    expect(c.wire.shippedTwice).toBe(1);
    expect(c.report.shippedTwice).toBe(1);
    expect(c.report.duplicateActivity).toBe(1);
    expect(c.violations).toEqual(
      expect.arrayContaining([
        '1 order(s) with orders.shipped under two event ids on the wire',
        '1 order(s) the activity consumer received orders.shipped for twice',
        '1 order transition(s) recorded twice in nats_activities',
      ]),
    );
  });

  it('a second metrics.orders for the same shipment: metrics twice', async () => {
    const id = await placed('7.00');
    const shipped = await waitFor(() => storedShipped(id), 15_000, 'orders.shipped stored');
    const order = (await sys.storage.order(id))!;
    const metric = createEvent(
      MetricEvents.orders,
      { event: 'order.shipped', order_id: id, amount_cents: order.amountCents, lead_time_ms: 1, at: new Date().toISOString() },
      { correlationId: order.correlationId, causationId: shipped.event_id },
    );
    sys.watch.nc.publish(metric.type, encodeJson(metric), { headers: eventHeaders(metric) });
    const c = await waitFor(
      async () => {
        const c = await at();
        return c.wire.metricsTwice ? c : null;
      },
      15_000,
      'metrics twice counted',
    );
    expect(c.wire.metricsTwice).toBe(1);
    expect(c.violations).toContain('1 order(s) with two metrics.orders for one shipment');
  });

  it('an accepted order that the database forgot: lost', async () => {
    const id = await placed('8.00');
    await sys.db.deleteFrom('orders').where('id', '=', id).execute();
    const c = await at();
    expect(c.lost).toBe(1);
    expect(c.violations).toContain(`accepted order ${id} is not in the database`);
    // its shipment is still on the wire, for an order the database no longer ships
    expect(c.violations).toContainEqual(expect.stringMatching(new RegExp(`orders.shipped on the wire for order\\(s\\) not shipped in the database: .*${id}`)));
  });

  it('an order shipped in the database without its orders.shipped: never reached the wire', async () => {
    const id = await placed('20000.00'); // declined: no orders.shipped was ever published for it
    await sys.db.updateTable('orders').set({ status: 'shipped' }).where('id', '=', id).execute();
    const c = await at();
    expect(c.violations).toContainEqual(expect.stringMatching(new RegExp(`shipped order\\(s\\) whose orders.shipped never reached the wire: .*${id}`)));
    // Put back, so that it does not offset the next test's wrong outcome in the shipped count.
    await sys.db.updateTable('orders').set({ status: 'payment_declined' }).where('id', '=', id).execute();
  });

  it('an approvable order declined (a payment service that declines everything): wrong outcome', async () => {
    await sys.kill('payments', 'SIGTERM');
    const rogue = await sys.connect();
    rogue.subscribe(PaymentsValidate.subject, {
      queue: PaymentsValidate.queueGroup,
      callback: (_err, m) => {
        const req = PaymentsValidate.request.parse(m.json());
        m.respond(
          new TextEncoder().encode(
            JSON.stringify({ approved: false, transaction_id: null, order_id: req.order_id, amount_cents: req.amount_cents, reason: 'rogue' }),
          ),
        );
      },
    });
    await rogue.flush();
    let id: string;
    try {
      id = await placed('9.00');
    } finally {
      await rogue.close();
      await sys.startProcess('payments');
    }
    const c = await at();
    expect((await sys.storage.order(id))?.status).toBe('payment_declined');
    expect(c.violations).toContain(`order ${id} of 900 cents is payment_declined, the payment policy says shipped`);
    expect(c.violations).toContainEqual(expect.stringMatching(/^shipped=\d+, approvable orders=\d+$/));
    expect(c.violations).toContainEqual(expect.stringMatching(/^declined=\d+, orders over the limit=\d+$/));
  });

  it('a duplicate activity row: the unique index refuses the same event id, the checker counts a second event for the same transition', async () => {
    const id = await placed('10.00');
    const row = await waitFor(
      () =>
        sys.db
          .selectFrom('nats_activities')
          .selectAll()
          .where('order_id', '=', id)
          .where('subject', '=', OrderEvents.created.subject)
          .where('consumer', '=', 'activity')
          .executeTakeFirst(),
      15_000,
      'its activity row',
    );
    const { id: _rowId, ...copy } = row;
    await expect(sys.db.insertInto('nats_activities').values(copy).execute()).rejects.toThrow(/UNIQUE constraint|duplicate key/i);
    const before = (await sys.check()).report.duplicateActivity;
    await sys.db
      .insertInto('nats_activities')
      .values({ ...copy, event_id: crypto.randomUUID() })
      .execute();
    const c = await at();
    expect(c.report.duplicateActivity).toBe(before + 1);
    expect(c.violations).toContain(`${before + 1} order transition(s) recorded twice in nats_activities`);
  });

  it('a stored event without its activity row: missing activity', async () => {
    const id = await placed('11.00');
    const created = (await sys.watch.readOrders()).find((e) => e.type === OrderEvents.created.subject && (e.data as { order_id: string }).order_id === id)!;
    expect(parseEvent(created.type, encodeJson(created)).ok).toBe(true);
    // Recorded and acked first, so the activity consumer will not record it again.
    expect(await sys.settle()).toBe(true);
    await waitFor(
      async () => (await sys.db.selectFrom('nats_activities').select('id').where('event_id', '=', created.event_id).execute()).length === 1,
      15_000,
      'its activity row',
    );
    await sys.db.deleteFrom('nats_activities').where('event_id', '=', created.event_id).execute();
    const c = await at();
    expect(c.missingActivity).toBe(1);
    expect(c.violations).toContain(`1 stored event(s) without an activity row: ${created.event_id}`);
    // the stream still holds it: the checker read it from there, not from the database
    expect((await (await sys.watch.nc.jetstreamManager()).streams.info(ORDERS_STREAM)).state.messages).toBeGreaterThan(0);
  });

  it('crashes: a SIGSEGV, a V8 abort and an exit code are reported, a planned kill is not, and a crash before a planned restart is kept', async () => {
    // A planned SIGKILL and restart: not a crash.
    await sys.kill('reconciler');
    await sys.startProcess('reconciler');
    expect(sys.crashed()).toEqual([]);

    // The real fulfillment worker is sent SIGSEGV, then is "restarted as planned". It dies of the
    // signal (src/runtime/shutdown.ts traps only the signals that ask a process to stop).
    const victim = sys.procs.get('fulfillment')!;
    victim.child.kill('SIGSEGV');
    await victim.exited;
    expect(victim.exit?.signal, 'a segfault is not a clean stop').toBe('SIGSEGV');
    await sys.kill('fulfillment');
    await sys.startProcess('fulfillment');

    // (ulimit -c 0: no core file; exec, so the signal that ends node is the shell's child's own.)
    const node = (name: string, code: string) => sys.adopt(spawnProcess(name, '/bin/sh', ['-c', `ulimit -c 0; exec "$0" -e "$1"`, process.execPath, code], {}));
    const segv = node('segv', "process.kill(process.pid, 'SIGSEGV')");
    const abort = node('abort', 'process.abort()');
    const exit3 = node('exit3', 'process.exit(3)');
    await Promise.all([segv.exited, abort.exited, exit3.exited]);

    const crashed = sys.crashed();
    expect(crashed).toHaveLength(4);
    expect(crashed[0]).toMatch(/^fulfillment \((signal SIGSEGV|exit \d+)\)$/);
    expect(crashed.slice(1)).toEqual(['segv (signal SIGSEGV)', 'abort (signal SIGABRT)', 'exit3 (exit 3)']);
    const c = await sys.check();
    expect(c.violations).toEqual(expect.arrayContaining(crashed.map((x) => `crashed: ${x}`)));
  });
});
