import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/web/app.js';
import { OPERATOR, startStack, type TestStack } from '../helpers/stack.js';

/**
 * Generated inputs (fast-check) against POST /orders and every operator route, signed in:
 * whatever arrives, the answer is never a 5xx. Each property runs a few dozen to a few hundred
 * cases (fixed seed, so a failure replays).
 */
let stack: TestStack;
let app: FastifyInstance;

beforeAll(async () => {
  stack = await startStack();
  app = await buildApp(await stack.runtime('web-fuzz'));
});
afterAll(async () => {
  await app?.close();
  await stack?.stop();
});

const scalar = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('', 'true', 'false', '0', '-1', '1e309', 'NaN', '86400001', '2030-01-01T00:00:00Z', '<script>', '../..', 'orders.>', 'demo.x', '$SYS.x'),
);
const value = fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 8 }), scalar, { maxKeys: 3 }));
/** An object with the routes' own field names (and some others), each with any value. */
const body = (keys: string[]) => fc.dictionary(fc.oneof(fc.constantFrom(...keys, 'x'), fc.string({ maxLength: 10 })), value, { maxKeys: 6 });
const encodings = fc.constantFrom('json', 'form', 'raw');

async function send(method: 'GET' | 'POST', url: string, payload: Record<string, unknown>, encoding: string, headers: Record<string, string> = {}) {
  const common = { accept: 'application/json', ...headers };
  if (method === 'GET') return app.inject({ method, url, headers: common });
  if (encoding === 'form') {
    const form = new URLSearchParams(Object.entries(payload).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])).toString();
    return app.inject({ method, url, payload: form, headers: { ...common, 'content-type': 'application/x-www-form-urlencoded' } });
  }
  if (encoding === 'raw')
    return app.inject({
      method,
      url,
      payload: JSON.stringify(payload).slice(0, Math.max(1, JSON.stringify(payload).length - 1)),
      headers: { ...common, 'content-type': 'application/json' },
    });
  return app.inject({ method, url, payload: JSON.stringify(payload), headers: { ...common, 'content-type': 'application/json' } });
}

const no5xx = (r: { statusCode: number; body: string }, what: string): void =>
  void expect(r.statusCode, `${what} → ${r.statusCode} ${r.body.slice(0, 300)}`).toBeLessThan(500);

describe('fuzz: no input gives a 5xx', () => {
  it('POST /orders (300 cases)', async () => {
    await fc.assert(
      fc.asyncProperty(body(['customer_email', 'amount', '_csrf']), encodings, async (b, enc) =>
        no5xx(await send('POST', '/orders', b, enc), `POST /orders ${enc} ${JSON.stringify(b)}`),
      ),
      { numRuns: 300, seed: 10 },
    );
  });

  const routes: { url: fc.Arbitrary<string>; method: 'GET' | 'POST'; keys: string[] }[] = [
    { method: 'POST', url: fc.constant('/dashboard/tools/publish'), keys: ['subject', 'payload', 'inject'] },
    { method: 'POST', url: fc.constant('/dashboard/tools/request'), keys: ['subject', 'payload', 'timeout_ms', 'inject'] },
    { method: 'POST', url: fc.constant('/dashboard/tools/job'), keys: ['message', 'delay_ms', 'run_at', 'fail'] },
    {
      method: 'POST',
      url: fc
        .oneof(fc.integer({ min: -5, max: 1e12 }).map(String), fc.string({ maxLength: 12 }).map(encodeURIComponent))
        .map((s) => `/dashboard/dlq/${s}/retry`),
      keys: [],
    },
    { method: 'POST', url: fc.constant('/dashboard/dlq/retry-all'), keys: [] },
    {
      method: 'GET',
      url: fc.oneof(fc.integer({ min: -5, max: 1e12 }).map(String), fc.string({ maxLength: 12 }).map(encodeURIComponent)).map((s) => `/dashboard/dlq/${s}`),
      keys: [],
    },
    {
      method: 'GET',
      url: fc
        .tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }))
        .map(([a, l]) => `/dashboard/dlq?after=${encodeURIComponent(a)}&limit=${encodeURIComponent(l)}`),
      keys: [],
    },
    {
      method: 'GET',
      url: fc
        .tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }))
        .map(([p, n]) => `/orders?page=${encodeURIComponent(p)}&per_page=${encodeURIComponent(n)}`),
      keys: [],
    },
    { method: 'GET', url: fc.constantFrom('/dashboard', '/dashboard/data'), keys: [] },
    { method: 'POST', url: fc.constant('/signin'), keys: ['token', 'next', '_csrf'] },
    {
      method: 'GET',
      url: fc
        .tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }))
        .map(([t, n]) => `/signin?token=${encodeURIComponent(t)}&next=${encodeURIComponent(n)}`),
      keys: [],
    },
  ];
  for (const [i, r] of routes.entries()) {
    it(`route #${i}: ${r.method} with ${r.keys.length ? r.keys.join(', ') : 'a generated URL'} (40 cases, signed in)`, async () => {
      await fc.assert(
        fc.asyncProperty(r.url, body(r.keys), encodings, async (url, b, enc) =>
          no5xx(await send(r.method, url, b, enc, OPERATOR), `${r.method} ${url} ${enc} ${JSON.stringify(b)}`),
        ),
        { numRuns: 40, seed: 10 },
      );
    });
  }
});
