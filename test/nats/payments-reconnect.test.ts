import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaymentsValidate } from '../../src/events/contracts.js';
import { NatsPaymentGateway } from '../../src/nats/payments-client.js';
import { closeRuntime, type Runtime } from '../../src/runtime/context.js';
import { startStack, type TestStack } from '../helpers/stack.js';

/**
 * A payment request in flight when the web app's connection drops (its node died) is given up at
 * once, as `unavailable` (the order waits as payment_pending for the reconciler), rather than
 * after the whole PAYMENT_TIMEOUT_MS: the reply, if any, went to the node that is gone.
 */
let stack: TestStack;
let web: Runtime;

beforeAll(async () => {
  stack = await startStack();
  web = await stack.runtime('web');
});
afterAll(async () => {
  await closeRuntime(web).catch(() => undefined);
  await stack.stop();
});

describe('a payment request across a lost connection', () => {
  it('is given up when the connection drops, not when its timeout ends', async () => {
    // A responder that takes the request and never answers.
    const silent = await stack.connect();
    silent.subscribe(PaymentsValidate.subject, { queue: PaymentsValidate.queueGroup, callback: () => undefined });
    await silent.flush();
    const gateway = new NatsPaymentGateway(web.nats.default, 60_000, web.log);
    const outcome = gateway.validate({ order_id: 'o-1', amount_cents: 100 }, { correlationId: 'c' });
    await new Promise((r) => setTimeout(r, 300));
    await stack.nats.stop();
    expect(await outcome).toEqual({ kind: 'unavailable', error: 'the NATS connection was lost while waiting for the payment service' });
  });
});
