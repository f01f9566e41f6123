import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Headers } from '../../src/events/envelope.js';
import { ORDERS_STREAM } from '../../src/nats/topology.js';
import type { OutboxMessage } from '../../src/outbox/outbox.js';
import type { Runtime } from '../../src/runtime/context.js';
import { startStack, type TestStack } from '../helpers/stack.js';

/**
 * The outbox sweep publishes a batch concurrently across orders and in sequence within one: what
 * a catch-up leaves it (rows of many orders, several per order, interleaved) reaches the stream
 * with each order's rows in the order they were written, and a row that fails holds back the
 * rest of its order, not only its own. Read back from the stream itself, as the test identity.
 */
const ORDERS = 40;
const SUBJECTS = ['orders.created', 'orders.paid', 'orders.shipped'];
let stack: TestStack;
let rt: Runtime;

beforeAll(async () => {
  stack = await startStack();
  rt = await stack.runtime('reconciler');
});
afterAll(async () => {
  await stack.stop();
});

/** Rows of `orders` orders, `subjects` each, written round-robin long enough ago for the sweep; by correlation id, in write order. */
async function writeRows(orders: number, subjects: (i: number) => string[]): Promise<Map<string, OutboxMessage[]>> {
  const written = new Map<string, OutboxMessage[]>();
  const old = Date.now() - 60_000;
  const run = randomUUID().slice(0, 8);
  for (let step = 0; step < 3; step++) {
    for (let i = 0; i < orders; i++) {
      const correlation = `c-${run}-${i}`;
      const subject = subjects(i)[step]!;
      const m: OutboxMessage = { id: randomUUID(), subject, payload: JSON.stringify({ i, subject }), headers: { [Headers.CorrelationId]: correlation } };
      await rt.storage.run((tx) => tx.outbox.add([m], new Date(old + step * 1000 + i)));
      written.set(correlation, [...(written.get(correlation) ?? []), m]);
    }
  }
  return written;
}

/** Message ids on the ORDERS stream by correlation id, in stream order. */
async function onStream(): Promise<Map<string, string[]>> {
  const jsm = await (await stack.connect()).jetstreamManager();
  const { state } = await jsm.streams.info(ORDERS_STREAM);
  const by = new Map<string, string[]>();
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(ORDERS_STREAM, { seq });
    const correlation = m.header.get(Headers.CorrelationId);
    by.set(correlation, [...(by.get(correlation) ?? []), m.header.get(Headers.MsgId)]);
  }
  return by;
}

describe('outbox sweep', { timeout: 60_000 }, () => {
  it("publishes a batch at once across orders, each order's rows in the order they were written", async () => {
    const written = await writeRows(ORDERS, () => SUBJECTS);
    let published = 0;
    for (let pass = 0; pass < 10 && published < ORDERS * SUBJECTS.length; pass++) published += await rt.outbox.sweep();
    expect(published).toBe(ORDERS * SUBJECTS.length);
    expect((await rt.storage.outboxStats()).unpublished).toBe(0);
    const stored = await onStream();
    expect(stored).toEqual(new Map([...written].map(([c, rows]) => [c, rows.map((m) => m.id)])));
  });

  it("never publishes an order's row after an earlier one of the same order failed", async () => {
    // Order 5's second row cannot be published (the reconciler may not publish that subject).
    const written = await writeRows(ORDERS, (i) => (i === 5 ? ['orders.created', 'orders.refunded', 'orders.shipped'] : SUBJECTS));
    await rt.outbox.sweep();
    const stored = await onStream();
    for (const [correlation, rows] of written) {
      const ids = stored.get(correlation) ?? [];
      // What reached the stream of each order is the beginning of what it wrote, in order.
      expect(ids, correlation).toEqual(rows.slice(0, ids.length).map((m) => m.id));
    }
    const poisoned = [...written.values()][5]!;
    expect(stored.get(poisoned[0]!.headers[Headers.CorrelationId]!)).toEqual([poisoned[0]!.id]);
  });
});
