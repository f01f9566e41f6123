import type { NatsConnection } from 'nats';
import { AckPolicy } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createJob, defineJob, jobSubject } from '../../src/events/jobs.js';
import { handler, jobAttempt, jobMessageHandler } from '../../src/jobs/worker.js';
import { runPullConsumer } from '../../src/nats/consumer.js';
import { DLQ_STREAM, listDeadLetters, purgeDeadLetters, retryDeadLetter, showDeadLetter } from '../../src/nats/dead-letters.js';
import { JOBS_STREAM } from '../../src/nats/topology.js';
import type { Runtime } from '../../src/runtime/context.js';
import { startPaymentResponder } from '../../src/workers/payments.js';
import { startStack, type TestStack, waitFor } from '../helpers/stack.js';

const flaky = defineJob({ name: 'flaky', queue: 'dlqtest', payload: z.object({ n: z.number() }) });
const consumerDef = { stream: JOBS_STREAM, config: { durable_name: 'jobs-dlqtest', filter_subject: 'jobs.dlqtest.>', ack_policy: AckPolicy.Explicit } };

let stack: TestStack;
let rt: Runtime;
let nc: NatsConnection;
let broken = true;
const ran: number[] = [];
let consumer: { stop(): Promise<void> };

beforeAll(async () => {
  stack = await startStack();
  rt = await stack.runtime('dlq');
  nc = await stack.connect();
  const jsm = await rt.nats.default.jetstreamManager();
  await jsm.consumers.add(JOBS_STREAM, consumerDef.config);
  const h = handler(flaky, async (p) => {
    if (broken) throw new Error('downstream is broken');
    ran.push(p.n);
  });
  // Short backoff is the real one (0.5 s, 1 s): three attempts take ~1.5 s.
  consumer = runPullConsumer(rt.js, consumerDef, jobMessageHandler([h], rt.log), rt.log, { maxDeliveries: 3, attemptOf: jobAttempt });
});
afterAll(async () => {
  await consumer.stop();
  await nc.close();
  await stack.stop();
});

const publishJob = (payload: unknown) =>
  rt.js.publish(jobSubject(flaky), new TextEncoder().encode(JSON.stringify({ ...createJob(flaky, { n: 0 }, { correlationId: 'c' }), payload })));

describe('dead letters', () => {
  it('a job whose handler keeps failing is dead-lettered after 3 deliveries, with everything needed to understand it', async () => {
    await publishJob({ n: 1 });
    const jsm = await rt.nats.default.jetstreamManager();
    const list = await waitFor(
      async () => {
        const l = await listDeadLetters(jsm);
        return l.total >= 1 ? l : null;
      },
      8000,
      'dead letter',
    );
    expect(list.items[0]).toMatchObject({
      consumer: 'jobs-dlqtest',
      subject: 'jobs.dlqtest.flaky',
      error: 'downstream is broken',
      deliveries: 3,
      retryable: true,
    });
    const detail = await showDeadLetter(jsm, list.items[0]!.seq);
    expect(JSON.parse(detail!.payload)).toMatchObject({ name: 'flaky', payload: { n: 1 } });
    expect(detail!.headers['Orderflow-Dlq-Stream']).toEqual([JOBS_STREAM]);
    // removed from the live flow
    expect((await jsm.streams.info(JOBS_STREAM)).state.messages).toBe(0);

    // once the cause is fixed, a retry is processed normally and leaves the DLQ
    broken = false;
    expect(await retryDeadLetter(rt.js, jsm, list.items[0]!.seq)).toBe('retried');
    await waitFor(() => ran.includes(1), 5000, 'retried job ran');
    expect((await listDeadLetters(jsm)).total).toBe(0);
    expect(await retryDeadLetter(rt.js, jsm, list.items[0]!.seq)).toBe('not_found');
  });

  it('a message that cannot be parsed goes there at once, without retries', async () => {
    const jsm = await rt.nats.default.jetstreamManager();
    await publishJob({ n: 'not a number' });
    await rt.js.publish('jobs.dlqtest.flaky', new TextEncoder().encode('\u0000\u0001garbage'));
    const l = await waitFor(
      async () => {
        const x = await listDeadLetters(jsm);
        return x.total >= 2 ? x : null;
      },
      3000,
      'two dead letters',
    );
    expect(l.items.map((i) => i.deliveries)).toEqual([1, 1]);
    expect(l.items.map((i) => i.error)).toEqual([expect.stringContaining('bad flaky payload'), 'job payload is not JSON']);
    expect(await purgeDeadLetters(jsm)).toBe(2);
  });

  it('a malformed payments.validate request gets a 400 reply and a dead letter that cannot be retried', async () => {
    const stop = (await startPaymentResponder(rt)).stop;
    try {
      const jsm = await rt.nats.default.jetstreamManager();
      const reply = await nc.request('payments.validate', new TextEncoder().encode('{"order_id": 5}'), { timeout: 2000 });
      expect(reply.headers?.get('Nats-Service-Error-Code')).toBe('400');
      const l = await waitFor(async () => {
        const x = await listDeadLetters(jsm);
        return x.total >= 1 ? x : null;
      });
      expect(l.items[0]).toMatchObject({ consumer: 'payments', subject: 'payments.validate', retryable: false });
      expect(await retryDeadLetter(rt.js, jsm, l.items[0]!.seq)).toBe('not_retryable');
      expect((await jsm.streams.info(DLQ_STREAM)).config.retention).toBe('limits');
    } finally {
      await stop();
    }
  });
});
