import { AckPolicy, type JsMsg } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageUnavailableError } from '../../src/orders/errors.js';
import { ACK, runPullConsumer } from '../../src/nats/consumer.js';
import { listDeadLetters } from '../../src/nats/dead-letters.js';
import { JOBS_STREAM } from '../../src/nats/topology.js';
import type { Runtime } from '../../src/runtime/context.js';
import { startStack, waitFor, type TestStack } from '../helpers/stack.js';

/**
 * A consumer whose handler finds the database away holds the message and pulls nothing more,
 * instead of spending its deliveries on the way to the dead letters; it carries on by itself, at
 * once, when the database answers. (The real database stopped and restarted: test/storage/fail-closed.)
 */
const def = { stream: JOBS_STREAM, config: { durable_name: 'jobs-outage', filter_subject: 'jobs.outage.>', ack_policy: AckPolicy.Explicit } };

let stack: TestStack;
let rt: Runtime;
let databaseUp = false;
const handled: { n: string; delivery: number }[] = [];
let attempts = 0;
let consumer: { stop(): Promise<void> };

beforeAll(async () => {
  stack = await startStack();
  rt = await stack.runtime('outage');
  await (await rt.nats.default.jetstreamManager()).consumers.add(JOBS_STREAM, def.config);
  consumer = runPullConsumer(
    rt.js,
    def,
    async (m: JsMsg) => {
      attempts++;
      if (!databaseUp) throw new StorageUnavailableError('PostgreSQL at 127.0.0.1:1/x is unavailable: ECONNREFUSED');
      handled.push({ n: m.string(), delivery: m.info.deliveryCount });
      return ACK;
    },
    rt.log,
    { maxDeliveries: 2 },
  );
});
afterAll(async () => {
  await consumer.stop();
  await stack.stop();
});

describe('a consumer while the database is away', () => {
  it('holds its message, pulls no other, dead-letters nothing, and resumes by itself when the database is back', async () => {
    for (const n of ['1', '2', '3']) await rt.js.publish('jobs.outage.x', new TextEncoder().encode(n));
    // Several retries' worth (maxDeliveries 2 would have dead-lettered after ~0.5 s).
    await waitFor(() => attempts >= 5, 10_000, 'the held message to be retried');
    expect(handled).toEqual([]);
    const jsm = await rt.nats.default.jetstreamManager();
    expect((await listDeadLetters(jsm)).total).toBe(0);
    const info = await jsm.consumers.info(JOBS_STREAM, 'jobs-outage');
    // One message held (delivered once, never nak'ed), the other two not even delivered.
    expect(info.num_ack_pending).toBeLessThanOrEqual(3);
    expect(info.num_redelivered).toBe(0);

    databaseUp = true;
    await waitFor(() => handled.length === 3, 10_000, 'every message handled');
    expect(handled.map((h) => h.n)).toEqual(['1', '2', '3']);
    expect(handled.map((h) => h.delivery)).toEqual([1, 1, 1]);
    expect((await listDeadLetters(jsm)).total).toBe(0);
  });
});
