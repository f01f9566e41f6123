import { randomUUID } from 'node:crypto';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { DuplicateKeyError, IllegalTransitionError, OrderNotFoundError } from '../../src/orders/errors.js';
import { type NewActivity, newOrder } from '../../src/orders/order.js';
import type { Storage } from '../../src/orders/ports.js';
import type { OutboxMessage } from '../../src/outbox/outbox.js';

/** A fresh, migrated, empty database of one backend; `connect` opens a Storage on it (twice: two processes). */
export interface ContractDatabase {
  connect(): Promise<Storage>;
  teardown(): Promise<void>;
}

const input = (n = 100) => ({ customerEmail: 'c@example.com', amountCents: n, correlationId: `corr-${randomUUID()}` });
const message = (subject = 'orders.created'): OutboxMessage => ({ id: randomUUID(), subject, payload: '{"x":1}', headers: { 'x-correlation-id': 'c' } });
const at = (iso: string) => new Date(iso);
const activity = (over: Partial<NewActivity> = {}): NewActivity => ({
  consumer: 'activity',
  subject: 'orders.created',
  eventId: randomUUID(),
  eventType: 'orders.created',
  orderId: randomUUID(),
  correlationId: 'c',
  summary: 's',
  payload: '{}',
  occurredAt: at('2026-01-01T00:00:00.000Z'),
  receivedAt: at('2026-01-01T00:00:00.001Z'),
  ...over,
});

/**
 * What every storage adapter must do, run against a real database of its kind. A backend adds
 * one file: `describeStorageContract('postgresql', freshPostgresDatabase)`.
 */
export function describeStorageContract(name: string, fresh: () => Promise<ContractDatabase>): void {
  describe(`storage contract: ${name}`, () => {
    let database: ContractDatabase;
    let s: Storage;
    const opened: Storage[] = [];
    const connect = async () => {
      const st = await database.connect();
      opened.push(st);
      return st;
    };

    beforeEach(async () => {
      await Promise.all(opened.splice(0).map((st) => st.close()));
      await database?.teardown();
      database = await fresh();
      s = await connect();
    });
    afterAll(async () => {
      await Promise.all(opened.splice(0).map((st) => st.close()));
      await database?.teardown();
    });

    const insert = (n = 100, when = new Date()) => s.run((tx) => tx.orders.insert(newOrder(input(n), when)));

    it('inserts an order and finds it, in a unit and from the reads, with every field as written', async () => {
      const made = newOrder(input(1234), at('2026-03-04T05:06:07.891Z'));
      const order = await s.run((tx) => tx.orders.insert(made));
      expect(order).toEqual({
        ...made,
        status: 'created',
        paymentResponse: null,
        paymentAttempts: 0,
        paymentError: null,
        nextAttemptAt: null,
        updatedAt: made.createdAt,
        paidAt: null,
        shippedAt: null,
      });
      expect(await s.run((tx) => tx.orders.find(order.id))).toEqual(order);
      expect(await s.order(order.id)).toEqual(order);
      expect(await s.order(randomUUID())).toBeNull();
    });

    it('refuses a taken reference with DuplicateKeyError, and the unit carries on', async () => {
      const first = await insert();
      const second = await s.run(async (tx) => {
        await expect(tx.orders.insert({ ...newOrder(input()), reference: first.reference })).rejects.toBeInstanceOf(DuplicateKeyError);
        return tx.orders.insert(newOrder(input()));
      });
      expect(await s.order(second.id)).toMatchObject({ status: 'created' });
    });

    it('moves an order when the state machine allows it, with the data of the move', async () => {
      const o = await insert();
      const paidAt = at('2026-05-06T07:08:09.010Z');
      const paid = await s.run((tx) =>
        tx.orders.transition(
          o.id,
          'paid',
          { paidAt, paymentResponse: '{"ok":true}', paymentError: null, incrementAttempts: true, nextAttemptAt: null },
          paidAt,
        ),
      );
      expect(paid).toMatchObject({ status: 'paid', paidAt, paymentResponse: '{"ok":true}', paymentAttempts: 1, updatedAt: paidAt, reference: o.reference });
      const pending = await insert();
      const next = at('2030-01-01T00:00:00.000Z');
      const again = await s.run(async (tx) => {
        await tx.orders.transition(pending.id, 'payment_pending', { paymentError: 'no answer', incrementAttempts: true, nextAttemptAt: next }, new Date());
        return tx.orders.transition(pending.id, 'payment_pending', { incrementAttempts: true }, new Date());
      });
      expect(again).toMatchObject({ status: 'payment_pending', paymentAttempts: 2, paymentError: 'no answer', nextAttemptAt: next });
    });

    it('refuses a move the state machine does not allow (IllegalTransitionError) and an unknown order (OrderNotFoundError)', async () => {
      const o = await insert();
      await s.run((tx) => tx.orders.transition(o.id, 'payment_declined', {}, new Date()));
      const refused = s.run((tx) => tx.orders.transition(o.id, 'paid', {}, new Date()));
      await expect(refused).rejects.toBeInstanceOf(IllegalTransitionError);
      await expect(refused).rejects.toMatchObject({ from: 'payment_declined', to: 'paid' });
      await expect(s.run((tx) => tx.orders.transition(randomUUID(), 'paid', {}, new Date()))).rejects.toBeInstanceOf(OrderNotFoundError);
      expect((await s.order(o.id))?.status).toBe('payment_declined');
    });

    it('lets exactly one of two racing moves win, from two connections', async () => {
      const other = await connect();
      for (let i = 0; i < 5; i++) {
        const o = await insert();
        const [a, b] = await Promise.allSettled([
          s.run((tx) => tx.orders.transition(o.id, 'paid', {}, new Date())),
          other.run((tx) => tx.orders.transition(o.id, 'payment_declined', {}, new Date())),
        ]);
        const won = [a, b].filter((r) => r.status === 'fulfilled');
        const lost = [a, b].filter((r) => r.status === 'rejected');
        expect(won).toHaveLength(1);
        expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(IllegalTransitionError);
      }
    });

    it('claims an order for re-driving once until its claim runs out, and only in the status asked', async () => {
      const o = await insert();
      const t0 = at('2026-01-01T00:00:00.000Z');
      const t1 = at('2026-01-01T00:00:10.000Z');
      await s.run((tx) => tx.orders.transition(o.id, 'payment_pending', { nextAttemptAt: t0 }, t0));
      expect(await s.run((tx) => tx.orders.claim(o.id, 'payment_pending', t0, t1))).toBe(true);
      expect(await s.run((tx) => tx.orders.claim(o.id, 'payment_pending', t0, t1))).toBe(false);
      expect(await s.run((tx) => tx.orders.claim(o.id, 'paid', t1, t1))).toBe(false);
      expect(await s.run((tx) => tx.orders.claim(o.id, 'payment_pending', t1, at('2026-01-01T00:00:20.000Z')))).toBe(true);
      expect((await s.order(o.id))?.nextAttemptAt).toEqual(at('2026-01-01T00:00:20.000Z'));
    });

    it('claims a batch of orders awaiting payment in one statement: the oldest due first, each until its claim runs out', async () => {
      const t = (sec: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, sec));
      const orders = [];
      for (let i = 0; i < 6; i++) orders.push(await insert(100 + i, t(i)));
      const [o0, o1, o2, o3, o4, o5] = orders.map((o) => o.id) as [string, string, string, string, string, string];
      await s.run(async (tx) => {
        await tx.orders.transition(o0, 'payment_pending', { nextAttemptAt: t(10) }, t(10));
        await tx.orders.transition(o1, 'payment_pending', { nextAttemptAt: t(10) }, t(10));
        // Backing off for long: not due at t(20), but taken when catching up.
        await tx.orders.transition(o2, 'payment_pending', { nextAttemptAt: t(500) }, t(10));
        await tx.orders.transition(o3, 'paid', { paidAt: t(10) }, t(10));
        // o4 is `created` and older than stuckBefore (a crash before asking); o5 is too recent.
      });
      const claim = (now: Date, until: Date, limit: number, backingOffAfter?: Date, stuckBefore = t(5)) =>
        s.run((tx) => tx.orders.claimAwaitingPayment({ now, stuckBefore, until, limit, backingOffAfter }));

      const first = await claim(t(20), t(30), 2);
      expect(first.map((o) => o.id)).toEqual([o0, o1]);
      expect(first[0]).toMatchObject({ status: 'payment_pending', nextAttemptAt: t(30), amountCents: 100 });
      // The next claim gets the next ones; what is claimed is not claimed again until its claim runs out.
      expect((await claim(t(20), t(30), 10)).map((o) => o.id)).toEqual([o4]);
      expect(await claim(t(25), t(35), 10)).toEqual([]);
      // Catching up: a timer later than any claim could be is a backoff, taken now; claims still hold.
      expect((await claim(t(25), t(35), 10, t(40))).map((o) => o.id)).toEqual([o2]);
      expect((await claim(t(31), t(41), 10)).map((o) => o.id)).toEqual([o0, o1, o4]);
      expect((await s.order(o2))?.nextAttemptAt).toEqual(t(35));
      expect((await s.order(o3))?.status).toBe('paid');
      expect((await s.order(o5))?.nextAttemptAt).toBeNull();
    });

    it('splits a batch between two connections claiming at once: no order is claimed by both', async () => {
      const other = await connect();
      const t0 = new Date(Date.UTC(2026, 0, 1));
      const ids = new Set<string>();
      for (let i = 0; i < 40; i++) {
        const o = await insert(100 + i, new Date(t0.getTime() + i));
        await s.run((tx) => tx.orders.transition(o.id, 'payment_pending', { nextAttemptAt: t0 }, t0));
        ids.add(o.id);
      }
      const now = new Date(t0.getTime() + 1000);
      const until = new Date(t0.getTime() + 60_000);
      const claimed: string[] = [];
      await Promise.all(
        [s, other].map(async (st) => {
          for (let round = 0; round < 10; round++) {
            const got = await st.run((tx) => tx.orders.claimAwaitingPayment({ now, stuckBefore: t0, until, limit: 3, backingOffAfter: until }));
            claimed.push(...got.map((o) => o.id));
          }
        }),
      );
      expect(claimed).toHaveLength(new Set(claimed).size);
      expect(claimed.length).toBe(40);
      expect(new Set(claimed)).toEqual(ids);
    });

    it('leases unpublished outbox rows oldest first, to one owner at a time, until published', async () => {
      const old = at('2026-01-01T00:00:00.000Z');
      const msgs = [message('orders.created'), message('orders.paid'), message('orders.shipped')];
      await s.run((tx) => tx.outbox.add([msgs[1]!], at('2026-01-01T00:00:01.000Z')));
      await s.run((tx) => tx.outbox.add([msgs[0]!], old));
      await s.run((tx) => tx.outbox.add([msgs[2]!], new Date()));
      const now = at('2026-01-02T00:00:00.000Z');
      const lease = (owner: string, t: Date) =>
        s.run((tx) =>
          tx.outbox.claimUnpublished({ owner, now: t, until: new Date(t.getTime() + 30_000), olderThan: at('2026-01-01T12:00:00.000Z'), limit: 10 }),
        );
      const a = await lease('relay-a', now);
      expect(a.map((m) => m.id)).toEqual([msgs[0]!.id, msgs[1]!.id]);
      expect(a[0]).toMatchObject({ subject: 'orders.created', payload: '{"x":1}', headers: { 'x-correlation-id': 'c' }, createdAt: old });
      expect(await lease('relay-b', now)).toEqual([]);
      // Its own lease is relay-a's again at once (its batch stopped at a failed publish).
      expect((await lease('relay-a', now)).map((m) => m.id)).toEqual([msgs[0]!.id, msgs[1]!.id]);
      await s.run((tx) => tx.outbox.recordFailure(msgs[0]!.id, 'nats down'));
      await s.run((tx) => tx.outbox.markPublished([msgs[1]!.id], now));
      // The lease ran out: the row relay-a did not publish is free again, the published one is not.
      const b = await lease('relay-b', new Date(now.getTime() + 31_000));
      expect(b.map((m) => m.id)).toEqual([msgs[0]!.id]);
      expect(await s.outboxStats()).toMatchObject({ unpublished: 2, oldestUnpublishedAt: old });
    });

    it('never leases one outbox row to two racing claimers', async () => {
      const other = await connect();
      const rows = Array.from({ length: 40 }, () => message());
      await s.run((tx) => tx.outbox.add(rows, at('2026-01-01T00:00:00.000Z')));
      const now = new Date();
      const claim = (st: Storage, owner: string) =>
        st.run((tx) => tx.outbox.claimUnpublished({ owner, now, until: new Date(now.getTime() + 60_000), olderThan: now, limit: 7 }));
      const got: string[] = [];
      for (let i = 0; i < 4; i++) {
        const [x, y] = await Promise.all([claim(s, `a${i}`), claim(other, `b${i}`)]);
        got.push(...x.map((m) => m.id), ...y.map((m) => m.id));
      }
      expect(new Set(got).size).toBe(got.length);
      expect(got).toHaveLength(40);
    });

    it('records an inbox message once per consumer', async () => {
      const id = randomUUID();
      const t = new Date();
      expect(await s.run((tx) => tx.inbox.record('fulfillment', id, t))).toBe(true);
      expect(await s.run((tx) => tx.inbox.record('fulfillment', id, t))).toBe(false);
      expect(await s.run((tx) => tx.inbox.record('other', id, t))).toBe(true);
    });

    it('records an activity row once per (consumer, event id), and reads it back', async () => {
      const row = activity();
      expect(await s.run((tx) => tx.activity.record(row))).toBe(true);
      expect(await s.run((tx) => tx.activity.record({ ...row, summary: 'again' }))).toBe(false);
      expect(await s.run((tx) => tx.activity.record({ ...row, consumer: 'activity-live' }))).toBe(true);
      expect(await s.isActivityRecorded('activity', row.eventId)).toBe(true);
      expect(await s.isActivityRecorded('activity', randomUUID())).toBe(false);
      const later = activity({ orderId: row.orderId, eventId: randomUUID(), subject: 'orders.paid', occurredAt: at('2026-01-01T00:00:05.000Z') });
      await s.run((tx) => tx.activity.record(later));
      const rows = await s.activityFor(row.orderId!);
      expect(rows.map((r) => [r.consumer, r.subject])).toEqual([
        ['activity', 'orders.created'],
        ['activity-live', 'orders.created'],
        ['activity', 'orders.paid'],
      ]);
      expect(rows[0]).toMatchObject({ ...row, id: expect.any(Number) });
    });

    it('rolls back a failing unit only, with what it wrote, while the units around it commit', async () => {
      const [a, b, c] = await Promise.allSettled([
        insert(),
        s.run(async (tx) => {
          const o = await tx.orders.insert(newOrder(input(999)));
          await tx.outbox.add([message()], new Date());
          throw Object.assign(new Error('the unit fails after writing'), { orderId: o.id });
        }),
        insert(),
      ]);
      expect(a.status).toBe('fulfilled');
      expect(c.status).toBe('fulfilled');
      expect(b.status).toBe('rejected');
      const failed = (b as PromiseRejectedResult).reason as Error & { orderId: string };
      expect(failed.message).toBe('the unit fails after writing');
      expect(await s.order(failed.orderId)).toBeNull();
      expect((await s.statusCounts()).total).toBe(2);
      expect((await s.outboxStats()).unpublished).toBe(0);
    });

    it('reads pages, counts, the reconciler’s scans, the dashboard’s figures and the invariants', async () => {
      const base = Math.floor(Date.now() / 10_000) * 10_000 - 200_000;
      const t = (sec: number) => new Date(base + sec * 1000);
      const orders = [];
      for (let i = 0; i < 5; i++) orders.push(await insert(100 + i, t(i)));
      const [o0, o1, o2, o3] = orders as [(typeof orders)[0], (typeof orders)[0], (typeof orders)[0], (typeof orders)[0]];
      await s.run((tx) => tx.orders.transition(o0.id, 'paid', { paidAt: t(10) }, t(10)));
      await s.run((tx) => tx.orders.transition(o1.id, 'paid', { paidAt: t(11) }, t(11)));
      await s.run((tx) => tx.orders.transition(o1.id, 'shipped', { shippedAt: t(12) }, t(12)));
      await s.run((tx) => tx.orders.transition(o2.id, 'payment_pending', { nextAttemptAt: t(20) }, t(20)));
      await s.run((tx) => tx.orders.transition(o3.id, 'payment_declined', {}, t(3)));

      const page = await s.orderPage(1, 2);
      expect(page).toMatchObject({ page: 1, perPage: 2, total: 5, pages: 3 });
      expect(page.items.map((o) => o.id)).toEqual([orders[4]!.id, o3.id]);
      expect((await s.orderPage(3, 2)).items.map((o) => o.id)).toEqual([o0.id]);
      expect(await s.statusCounts()).toEqual({ byStatus: { created: 1, paid: 1, shipped: 1, payment_pending: 1, payment_declined: 1 }, total: 5 });
      expect((await s.orderStatuses()).sort((a, b) => a.id.localeCompare(b.id))).toEqual(
        orders
          .map((o) => ({
            id: o.id,
            status: o === o0 ? 'paid' : o === o1 ? 'shipped' : o === o2 ? 'payment_pending' : o === o3 ? 'payment_declined' : 'created',
          }))
          .sort((a, b) => a.id.localeCompare(b.id)),
      );

      const now = t(30);
      // payment_pending and due, and `created` older than stuckBefore: oldest first.
      expect((await s.awaitingPayment({ now, stuckBefore: t(5), limit: 10 })).map((o) => o.id)).toEqual([o2.id, orders[4]!.id]);
      expect((await s.awaitingPayment({ now: t(19), stuckBefore: t(0), limit: 10 })).map((o) => o.id)).toEqual([]);
      expect((await s.unshipped({ now, paidBefore: t(11), limit: 10 })).map((o) => o.id)).toEqual([o0.id]);

      const lead = await s.recentLeadTimes(10);
      expect(lead).toHaveLength(1);
      expect(lead[0]).toBeCloseTo(11_000, 0);
      const { created, shipped } = await s.throughput(t(-1), 10);
      expect(created.reduce((n, b) => n + b.n, 0)).toBe(5);
      expect(shipped).toEqual([{ bucket: Math.floor(t(12).getTime() / 1000 / 10), n: 1 }]);
      for (const b of created) expect(Number.isInteger(b.bucket)).toBe(true);

      await s.run((tx) => tx.activity.record(activity({ orderId: o1.id, subject: 'orders.shipped' })));
      await s.run((tx) => tx.activity.record(activity({ orderId: o1.id, subject: 'orders.shipped' })));
      await s.run((tx) => tx.outbox.add([message()], new Date()));
      expect(await s.invariantCounts()).toMatchObject({ total: 5, shippedTwice: 1, duplicateActivity: 1, unpublishedOutbox: 1 });
      await expect(s.ping()).resolves.toBeUndefined();
    });
  });
}
