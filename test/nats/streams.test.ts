import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, OrderEvents } from '../../src/events/contracts.js';
import { publishToStream } from '../../src/nats/publish.js';
import { ensureTopology, JOBS_STREAM, ORDERS_STREAM } from '../../src/nats/topology.js';
import { eventMessage } from '../../src/outbox/outbox.js';
import type { Runtime } from '../../src/runtime/context.js';
import { startStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let rt: Runtime;
beforeAll(async () => {
  stack = await startStack();
  rt = await stack.runtime('streams');
});
afterAll(() => stack.stop());

describe('JetStream topology', () => {
  it('ORDERS captures orders.> (including deeper subjects) and dedupes by Nats-Msg-Id', async () => {
    const jsm = await rt.nats.default.jetstreamManager();
    const before = (await jsm.streams.info(ORDERS_STREAM)).state.messages;
    const e = createEvent(
      OrderEvents.created,
      { order_id: 's-1', reference: 'ORD-BBBBBBBB', customer_email: 's@example.com', amount_cents: 1, currency: 'USD' },
      { correlationId: 'c' },
    );
    await publishToStream(rt.js, eventMessage(e));
    await publishToStream(rt.js, eventMessage(e));
    const ack = await rt.js.publish('orders.audit.manual', new TextEncoder().encode('{}'));
    expect(ack.stream).toBe(ORDERS_STREAM);
    const info = await jsm.streams.info(ORDERS_STREAM);
    expect(info.state.messages - before).toBe(2);
    expect(info.config.subjects).toEqual(['orders.>']);
    expect(info.config.max_age).toBe(90 * 24 * 3600 * 1e9);
  });

  it('setup is idempotent and reports what it did', async () => {
    const jsm = await rt.nats.default.jetstreamManager();
    const again = await ensureTopology(jsm, { ordersMaxAgeDays: 90 });
    expect(again.streams.map((s) => s.action)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(again.consumers.map((c) => c.action)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    const changed = await ensureTopology(jsm, { ordersMaxAgeDays: 30 });
    expect(changed.streams.find((s) => s.name === ORDERS_STREAM)?.action).toBe('updated');
    expect((await jsm.streams.info(JOBS_STREAM)).config.retention).toBe('workqueue');
    const c = await jsm.consumers.info(ORDERS_STREAM, 'activity');
    expect(c.config).toMatchObject({ durable_name: 'activity', filter_subject: 'orders.*', ack_policy: 'explicit' });
  });
});
