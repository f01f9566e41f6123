import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/web/app.js';
import { startActivityWorker } from '../../src/workers/activity.js';
import { startFulfillmentWorker } from '../../src/workers/fulfillment.js';
import { startPaymentResponder } from '../../src/workers/payments.js';
import { OPERATOR, startStack, type TestStack, waitFor } from '../helpers/stack.js';
import { formTokens } from '../helpers/web.js';

let stack: TestStack;
let app: FastifyInstance;
const stops: (() => Promise<void>)[] = [];
const JSON_HEADERS = { accept: 'application/json' };

beforeAll(async () => {
  stack = await startStack();
  app = await buildApp(await stack.runtime('web'));
  const workers = await stack.runtime('workers');
  stops.push((await startPaymentResponder(workers)).stop, startActivityWorker(workers).stop, startFulfillmentWorker(workers).stop);
});
afterAll(async () => {
  await app.close();
  for (const s of stops) await s();
  await stack.stop();
});

const post = (payload: unknown, headers: Record<string, string> = JSON_HEADERS) =>
  app.inject({ method: 'POST', url: '/orders', payload: payload as object, headers });
// As a browser posts the form: with the CSRF cookie and the token from the form's page.
const postForm = async (form: Record<string, string>) => {
  const { cookie, token } = await formTokens(app);
  return app.inject({
    method: 'POST',
    url: '/orders',
    payload: new URLSearchParams({ ...form, _csrf: token }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', cookie },
  });
};

describe('GET /orders/create', () => {
  it('shows the form', async () => {
    const r = await app.inject({ url: '/orders/create' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/text\/html/);
    expect(r.body).toContain('name="customer_email"');
    expect(r.body).toContain('name="amount"');
    expect(r.headers['content-security-policy']).toContain("script-src 'self'");
  });
  it('/ redirects to it', async () => {
    const r = await app.inject({ url: '/' });
    expect(r.statusCode).toBe(302);
    expect(r.headers.location).toBe('/orders/create');
  });
});

describe('POST /orders (JSON)', () => {
  it('201 with the order and a Location; the order ships by itself', async () => {
    const r = await post({ customer_email: ' Ada@Example.com ', amount: '12.30' });
    expect(r.statusCode).toBe(201);
    const o = r.json();
    expect(o).toMatchObject({
      reference: expect.stringMatching(/^ORD-[0-9A-Z]{8}$/),
      customer_email: 'ada@example.com',
      amount: '12.30',
      amount_cents: 1230,
      status: 'paid',
    });
    expect(r.headers.location).toBe(`/orders/${o.id}`);
    const shipped = await waitFor(
      async () => {
        const g = (await app.inject({ url: `/orders/${o.id}`, headers: JSON_HEADERS })).json();
        return g.status === 'shipped' && g.timeline.length === 3 ? g : null;
      },
      5000,
      'shipped',
    );
    expect(shipped.timeline.map((t: { subject: string }) => t.subject)).toEqual(['orders.created', 'orders.paid', 'orders.shipped']);
    expect(shipped.shipped_at).toEqual(expect.any(String));
  });

  it('takes a JSON number amount exactly (0.29 is 29 cents, not 28.999…)', async () => {
    const r = await post({ customer_email: 'n@example.com', amount: 0.29 });
    expect(r.json()).toMatchObject({ amount_cents: 29, amount: '0.29' });
  });

  it('declines 10,000.00 and shows the reason', async () => {
    const r = await post({ customer_email: 'big@example.com', amount: '10000.00' });
    expect(r.statusCode).toBe(201);
    expect(r.json()).toMatchObject({ status: 'payment_declined', payment_response: { approved: false, reason: expect.stringContaining('10,000.00') } });
    const page = await app.inject({ url: `/orders/${r.json().id}` });
    expect(page.body).toContain('declined');
    expect(page.body).toContain('10,000.00 limit');
  });

  it('400 with field errors for bad input, saying what is wrong with each', async () => {
    for (const amount of ['1e3', '-5', '12.345', '', 'abc', 0, 'NaN', '99999999999999999999999']) {
      const r = await post({ customer_email: 'x@example.com', amount });
      expect(r.statusCode, `amount ${amount}`).toBe(400);
      expect(r.json()).toMatchObject({ error: 'validation_failed', message: expect.stringContaining('amount'), fields: { amount: [expect.any(String)] } });
    }
    const message = async (amount: unknown) => (await post({ customer_email: 'x@example.com', amount })).json().fields.amount[0] as string;
    expect(await message('-5')).toMatch(/greater than zero/);
    expect(await message('0.00')).toMatch(/greater than zero/);
    expect(await message('NaN')).toMatch(/must be a number/);
    expect(await message('99999999999999999999999')).toMatch(/too large/);
    expect(await message('12.345')).toMatch(/two decimals/);
    const r = await post({ customer_email: 'nope' });
    expect(r.json().fields).toMatchObject({ customer_email: [expect.stringContaining('valid email')], amount: [expect.any(String)] });
  });

  it('one error shape with a code per cause: broken JSON, wrong content type, too large', async () => {
    const json = { accept: 'application/json' };
    const bad = await app.inject({ method: 'POST', url: '/orders', payload: '{"customer_email":', headers: { ...json, 'content-type': 'application/json' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ error: 'invalid_json', message: expect.any(String) });
    for (const type of ['application/xml', 'text/plain']) {
      const r = await app.inject({ method: 'POST', url: '/orders', payload: '<order/>', headers: { ...json, 'content-type': type } });
      expect(r.statusCode, type).toBe(415);
      expect(r.json()).toEqual({ error: 'unsupported_media_type', message: expect.stringContaining('application/json') });
    }
    const big = await app.inject({
      method: 'POST',
      url: '/orders',
      payload: JSON.stringify({ customer_email: 'a@b.co', amount: '1', pad: 'x'.repeat(900 * 1024) }),
      headers: { ...json, 'content-type': 'application/json' },
    });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toEqual({ error: 'payload_too_large', message: expect.stringContaining('16 KiB') });
  });

  it('keeps a caller correlation id and echoes it', async () => {
    const r = await post({ customer_email: 'c@example.com', amount: '1.00' }, { ...JSON_HEADERS, 'x-correlation-id': 'trace-abc-123' });
    expect(r.headers['x-correlation-id']).toBe('trace-abc-123');
    expect(r.json().correlation_id).toBe('trace-abc-123');
    const evil = await post({ customer_email: 'c@example.com', amount: '1.00' }, { ...JSON_HEADERS, 'x-correlation-id': 'a b\u0000c' });
    expect(evil.json().correlation_id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('takes the trace id of a W3C traceparent as the correlation id, and answers with a child span', async () => {
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const r = await post({ customer_email: 't@example.com', amount: '2.00' }, { ...JSON_HEADERS, traceparent: `00-${trace}-00f067aa0ba902b7-01` });
    expect(r.json().correlation_id).toBe(trace);
    expect(r.headers.traceparent).toMatch(new RegExp(`^00-${trace}-[0-9a-f]{16}-01$`));
  });
});

describe('POST /orders (HTML form)', () => {
  it('303 to the order page, which shows the order', async () => {
    const r = await postForm({ customer_email: 'form@example.com', amount: '5' });
    expect(r.statusCode).toBe(303);
    const page = await app.inject({ url: r.headers.location as string });
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/ORD-[0-9A-Z]{8}/);
    expect(page.body).toContain('form@example.com');
    expect(page.body).toContain('5.00 USD');
    expect(page.body).toContain('/public/order.js');
  });

  it('400 re-renders the form with messages and the input kept, escaped', async () => {
    const r = await postForm({ customer_email: '<script>alert(1)</script>', amount: '12.345' });
    expect(r.statusCode).toBe(400);
    expect(r.body).toContain('Enter a valid email address');
    expect(r.body).toContain('at most two decimals');
    expect(r.body).toContain('value="&lt;script&gt;alert(1)&lt;/script&gt;"');
    expect(r.body).not.toContain('<script>alert(1)</script>');
    expect(r.body).toContain('value="12.345"');
  });
});

describe('GET /orders (operators)', () => {
  it('lists newest first with pagination, in HTML and JSON', async () => {
    const JSON_HEADERS = { accept: 'application/json', ...OPERATOR };
    for (let i = 0; i < 3; i++) await post({ customer_email: `p${i}@example.com`, amount: `${i + 1}.00` });
    const first = (await app.inject({ url: '/orders?per_page=2', headers: JSON_HEADERS })).json();
    expect(first).toMatchObject({ page: 1, per_page: 2, total: expect.any(Number), pages: expect.any(Number) });
    expect(first.items.map((o: { customer_email: string }) => o.customer_email)).toEqual(['p2@example.com', 'p1@example.com']);
    const second = (await app.inject({ url: '/orders?per_page=2&page=2', headers: JSON_HEADERS })).json();
    expect(second.items[0].customer_email).toBe('p0@example.com');
    const html = await app.inject({ url: '/orders?per_page=2&page=2', headers: OPERATOR });
    expect(html.body).toContain('p0@example.com');
    expect(html.body).toContain('rel="prev"');
    expect((await app.inject({ url: '/orders?page=0', headers: JSON_HEADERS })).statusCode).toBe(400);
  });
});

describe('GET /orders/:id', () => {
  it('404 for an unknown or malformed id, in HTML and JSON', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
      const j = await app.inject({ url: `/orders/${id}`, headers: JSON_HEADERS });
      expect(j.statusCode).toBe(404);
      expect(j.json()).toMatchObject({ error: 'not_found' });
      const h = await app.inject({ url: `/orders/${id}` });
      expect(h.statusCode).toBe(404);
      expect(h.body).toContain('Order not found');
    }
    expect((await app.inject({ url: '/nowhere', headers: JSON_HEADERS })).statusCode).toBe(404);
  });
});
