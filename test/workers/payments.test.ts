import { ErrorCode, type NatsConnection, type NatsError } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaymentsValidate } from '../../src/events/contracts.js';
import { NatsPaymentGateway } from '../../src/nats/payments-client.js';
import { startPaymentResponder } from '../../src/workers/payments.js';
import { startStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let nc: NatsConnection;

beforeAll(async () => {
  stack = await startStack();
  nc = await stack.connect();
});
afterAll(async () => {
  await nc.close();
  await stack.stop();
});

const ask = async (body: unknown) => {
  const msg = await nc.request(PaymentsValidate.subject, new TextEncoder().encode(JSON.stringify(body)), { timeout: 2000 });
  return {
    json: () => msg.json() as Record<string, unknown>,
    error: msg.headers?.get('Nats-Service-Error'),
    code: msg.headers?.get('Nats-Service-Error-Code'),
  };
};

describe('payments.validate request/reply', () => {
  it('without a responder, the gateway reports no responders instead of throwing', async () => {
    const gateway = new NatsPaymentGateway(nc, 1000);
    const outcome = await gateway.validate({ order_id: 'o-1', amount_cents: 100 }, { correlationId: 'c' });
    expect(outcome).toEqual({ kind: 'unavailable', error: expect.stringContaining('no responders') });
    // and the raw client error is the one the gateway maps
    const err = await nc.request(PaymentsValidate.subject, new Uint8Array(), { timeout: 500 }).catch((e: NatsError) => e);
    expect((err as NatsError).code).toBe(ErrorCode.NoResponders);
  });

  describe('with the responder running', () => {
    let stop: () => Promise<void>;
    beforeAll(async () => {
      stop = (await startPaymentResponder(await stack.runtime('payments'))).stop;
    });
    afterAll(() => stop());

    it('approves 0 < amount < 10,000.00 with a transaction id', async () => {
      const r = await ask({ order_id: 'o-2', amount_cents: 999_999 });
      expect(r.json()).toEqual({ approved: true, transaction_id: expect.stringMatching(/^txn_/), order_id: 'o-2', amount_cents: 999_999 });
    });

    it('declines 10,000.00 and more, and zero, with a reason', async () => {
      expect((await ask({ order_id: 'o-3', amount_cents: 1_000_000 })).json()).toMatchObject({
        approved: false,
        transaction_id: null,
        reason: expect.any(String),
      });
      expect((await ask({ order_id: 'o-4', amount_cents: 0 })).json()).toMatchObject({ approved: false, order_id: 'o-4' });
    });

    it('answers a malformed request with a service error, and keeps serving', async () => {
      const bad = await nc.request(PaymentsValidate.subject, new TextEncoder().encode('{not json'), { timeout: 2000 });
      expect(bad.headers?.get('Nats-Service-Error-Code')).toBe('400');
      const wrong = await ask({ order_id: 'o-5', amount_cents: 'lots' });
      expect(wrong.code).toBe('400');
      expect((await ask({ order_id: 'o-6', amount_cents: 5 })).json()).toMatchObject({ approved: true });
    });

    it('is a NATS micro service that $SRV.PING finds, in a queue group', async () => {
      const ping = await nc.request('$SRV.PING.payments', new Uint8Array(), { timeout: 2000 });
      expect(ping.json()).toMatchObject({ name: 'payments', type: 'io.nats.micro.v1.ping_response' });
      const info = await nc.request('$SRV.INFO.payments', new Uint8Array(), { timeout: 2000 });
      expect((info.json() as { endpoints: { subject: string; queue_group: string }[] }).endpoints[0]).toMatchObject({
        subject: PaymentsValidate.subject,
        queue_group: PaymentsValidate.queueGroup,
      });
    });

    it('the gateway turns a reply into an outcome', async () => {
      const gateway = new NatsPaymentGateway(nc, 2000);
      expect(await gateway.validate({ order_id: 'o-7', amount_cents: 1 }, { correlationId: 'c' })).toMatchObject({ kind: 'reply', reply: { approved: true } });
    });
  });
});
