import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, OrderEvents } from '../../src/events/contracts.js';
import { JetStreamPublisher } from '../../src/nats/publishers.js';
import type { Runtime } from '../../src/runtime/context.js';
import { startActivityWorker } from '../../src/workers/activity.js';
import { startStack, waitFor, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let rt: Runtime;

beforeAll(async () => {
  stack = await startStack();
  rt = await stack.runtime('activity-test');
});
afterAll(() => stack.stop());

const created = (orderId: string) =>
  createEvent(OrderEvents.created, { order_id: orderId, reference: 'ORD-AAAAAAAA', customer_email: 'x@example.com', amount_cents: 500, currency: 'USD' }, { correlationId: `corr-${orderId}` });

const rows = async (orderId: string, consumer?: string) => (await rt.storage.activityFor(orderId)).filter((a) => !consumer || a.consumer === consumer);

describe('activity worker (orders.*)', () => {
  it('durable: records events published while it was stopped, once each, even when published twice', async () => {
    const pub = new JetStreamPublisher(rt.js);
    const e1 = created('act-1');
    await pub.publish(e1);
    await pub.publish(e1); // same Nats-Msg-Id: JetStream stores it once
    const paid = createEvent(OrderEvents.paid, { order_id: 'act-1', reference: 'ORD-AAAAAAAA', amount_cents: 500, transaction_id: 'txn_1' }, { correlationId: 'corr-act-1' });
    await pub.publish(paid);
    const shipped = createEvent(OrderEvents.shipped, { order_id: 'act-1', reference: 'ORD-AAAAAAAA', shipped_at: new Date().toISOString() }, { correlationId: 'corr-act-1' });
    await pub.publish(shipped);

    const worker = startActivityWorker(rt);
    try {
      const got = await waitFor(async () => {
        const r = await rows('act-1', 'activity');
        return r.length >= 3 ? r : null;
      });
      expect(got.map((r) => r.subject)).toEqual(['orders.created', 'orders.paid', 'orders.shipped']);
      expect(got[0]).toMatchObject({ eventId: e1.event_id, correlationId: 'corr-act-1', summary: expect.stringContaining('ORD-AAAAAAAA created for x@example.com: 5.00 USD') });
      expect(JSON.parse(got[0]!.payload)).toMatchObject({ event_id: e1.event_id, data: { order_id: 'act-1' } });
    } finally {
      await worker.stop();
    }
  });

  it('a core publish of the same event id (not deduped by JetStream) still adds no second row', async () => {
    const worker = startActivityWorker(rt);
    try {
      const e = created('act-2');
      const data = new TextEncoder().encode(JSON.stringify(e));
      const jsm = await rt.nats.default.jetstreamManager();
      await rt.js.publish(e.type, data); // no msgID: JetStream stores both
      const second = await rt.js.publish(e.type, data);
      expect(second.duplicate).toBe(false);
      // Both copies delivered and acked: the consumer's ack floor has passed the second one.
      await waitFor(async () => {
        const i = await jsm.consumers.info('ORDERS', 'activity');
        return i.num_ack_pending === 0 && i.num_pending === 0 && i.ack_floor.stream_seq >= second.seq;
      }, 10_000, 'both copies acked');
      expect(await rows('act-2')).toHaveLength(1);
    } finally {
      await worker.stop();
    }
  });

  it('rejects a malformed message without crashing and keeps consuming', async () => {
    const worker = startActivityWorker(rt);
    try {
      await rt.js.publish('orders.created', new TextEncoder().encode('garbage{'));
      await rt.js.publish('orders.created', new TextEncoder().encode(JSON.stringify({ ...created('x'), data: { order_id: 'act-3' } })));
      const good = created('act-4');
      await new JetStreamPublisher(rt.js).publish(good);
      await waitFor(async () => (await rows('act-4')).length === 1);
      expect(await rows('act-3')).toHaveLength(0);
    } finally {
      await worker.stop();
    }
  });

  it('--live: a plain core subscription records what happens while it runs', async () => {
    const worker = startActivityWorker(rt, { live: true });
    try {
      await rt.nats.default.flush();
      const e = created('act-5');
      await new JetStreamPublisher(rt.js).publish(e);
      const got = await waitFor(async () => {
        const r = await rows('act-5', 'activity-live');
        return r.length ? r : null;
      });
      expect(got[0]).toMatchObject({ subject: 'orders.created', eventId: e.event_id });
    } finally {
      await worker.stop();
    }
  });
});
