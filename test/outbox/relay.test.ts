import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, OrderEvents } from '../../src/events/contracts.js';
import { ORDERS_STREAM } from '../../src/nats/topology.js';
import { eventMessage } from '../../src/outbox/outbox.js';
import { closeRuntime, type Runtime } from '../../src/runtime/context.js';
import { startStack, type TestStack } from '../helpers/stack.js';

describe('outbox relay', () => {
  let stack: TestStack;
  let rt: Runtime;
  beforeAll(async () => {
    stack = await startStack();
    rt = await stack.runtime('relay-test');
  });
  afterAll(async () => {
    await stack.stop();
  });

  // The web app answers an order before its orders.paid is published (the row is committed):
  // a shutdown right after the answer must still publish it, not leave it to the next start's sweep.
  it('stop() waits for a publish still waiting for the one before it', async () => {
    const event = createEvent(
      OrderEvents.paid,
      { order_id: '7c0f5b5e-0000-4000-8000-000000000001', reference: 'ORD-RELAY001', amount_cents: 100, transaction_id: 'txn_1' },
      { correlationId: 'relay-test' },
    );
    const message = eventMessage(event);
    await rt.storage.run((tx) => tx.outbox.add([message], new Date()));
    let release!: () => void;
    const before = new Promise<void>((r) => (release = r));
    void rt.outbox.publish([message], { after: before });
    setTimeout(release, 300);
    await closeRuntime(rt);

    const nc = await stack.connect();
    try {
      const jsm = await nc.jetstreamManager();
      const stored = await jsm.streams.getMessage(ORDERS_STREAM, { last_by_subj: OrderEvents.paid.subject });
      expect(stored.header.get('Nats-Msg-Id')).toBe(message.id);
    } finally {
      await nc.close();
    }
  });
});
