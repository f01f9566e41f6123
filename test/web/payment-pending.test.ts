import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/web/app.js';
import { startStack, type TestStack } from '../helpers/stack.js';

// No payment responder runs here.
let stack: TestStack;
let app: FastifyInstance;
beforeAll(async () => {
  stack = await startStack({ PAYMENT_TIMEOUT_MS: '300' });
  app = await buildApp(await stack.runtime('web'));
});
afterAll(async () => {
  await app.close();
  await stack.stop();
});

describe('with no payment service running', () => {
  it('accepts the order as payment_pending with a clear message, never a 500', async () => {
    const r = await app.inject({
      method: 'POST',
      url: '/orders',
      payload: { customer_email: 'wait@example.com', amount: '3.00' },
      headers: { accept: 'application/json' },
    });
    expect(r.statusCode).toBe(201);
    expect(r.json()).toMatchObject({ status: 'payment_pending', payment_attempts: 1, payment_error: expect.stringContaining('no payment service') });
    const page = await app.inject({ url: `/orders/${r.json().id}` });
    expect(page.body).toContain('The payment service did not answer');
    expect(page.body).toContain('will be retried');
  });
});
