import { connect as tcpConnect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { headers } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/web/app.js';
import { startWeb } from '../../src/web/server.js';
import { OPERATOR, startStack, TEST_OPERATOR_TOKEN, type TestStack } from '../helpers/stack.js';
import { formTokens } from '../helpers/web.js';

/** Issue 10, HTTP side: who may do what over HTTP, and the edge's limits. */
let stack: TestStack;
let app: FastifyInstance;
let base: string;
let stopWeb: () => Promise<void>;
const J = { accept: 'application/json' };

beforeAll(async () => {
  stack = await startStack({ PORT: '0', ALLOWED_HOSTS: 'shop.example.com,admin.example.com:8443' });
  const web = await startWeb(await stack.runtime('web'));
  app = web.app;
  base = web.url;
  stopWeb = web.stop;
});
afterAll(async () => {
  await stopWeb?.();
  await stack?.stop();
});

/** Every operator route, with a body that would do something if it were let through. */
const OPERATOR_ROUTES: { method: 'GET' | 'POST'; url: string; payload?: Record<string, unknown> }[] = [
  { method: 'GET', url: '/dashboard' },
  { method: 'GET', url: '/dashboard/data' },
  { method: 'GET', url: '/dashboard/dlq' },
  { method: 'GET', url: '/dashboard/dlq/1' },
  { method: 'GET', url: '/orders' },
  { method: 'GET', url: '/orders?per_page=100' },
  { method: 'POST', url: '/dashboard/tools/publish', payload: { subject: 'demo.csrf', payload: 'x' } },
  { method: 'POST', url: '/dashboard/tools/request', payload: { subject: 'payments.validate', payload: '{}' } },
  { method: 'POST', url: '/dashboard/tools/job', payload: { message: 'csrf' } },
  { method: 'POST', url: '/dashboard/dlq/1/retry' },
  { method: 'POST', url: '/dashboard/dlq/retry-all' },
  { method: 'POST', url: '/signout' },
];

/** A browser session, as /signin?token=… leaves it: the session cookie plus the dashboard's CSRF cookie and token. */
async function session(): Promise<{ cookie: string; token: string }> {
  const signin = await app.inject({ url: `/signin?token=${TEST_OPERATOR_TOKEN}` });
  expect(signin.statusCode).toBe(303);
  const sessionCookie = signin.cookies.map((c) => `${c.name}=${c.value}`).join('; ');
  return formTokens(app, '/dashboard', { cookie: sessionCookie });
}

describe('operator routes without a session', () => {
  it('answer 401 JSON to API clients and 303 to the sign-in page to browsers asking for a page', async () => {
    for (const r of OPERATOR_ROUTES) {
      const json = await app.inject({
        method: r.method,
        url: r.url,
        headers: { ...J, 'content-type': 'application/json' },
        payload: JSON.stringify(r.payload ?? {}),
      });
      expect(json.statusCode, `${r.method} ${r.url}`).toBe(401);
      expect(json.json()).toMatchObject({ error: 'unauthorized', message: expect.stringContaining('sign in') });
      expect(json.headers['www-authenticate']).toMatch(/^Bearer/);
      if (r.method === 'GET') {
        const html = await app.inject({ url: r.url, headers: { accept: 'text/html' } });
        expect(html.statusCode, `GET ${r.url} (HTML)`).toBe(303);
        expect(html.headers.location).toBe(`/signin?next=${encodeURIComponent(r.url)}`);
      }
    }
    const stream = await app.inject({ url: '/dashboard/stream', headers: { accept: 'text/event-stream' } });
    expect(stream.statusCode).toBe(401);
  });

  it('a wrong bearer token or a forged session cookie is no session', async () => {
    expect((await app.inject({ url: '/dashboard/data', headers: { ...J, authorization: 'Bearer nope' } })).statusCode).toBe(401);
    expect((await app.inject({ url: '/dashboard/data', headers: { ...J, authorization: `Bearer ${TEST_OPERATOR_TOKEN}x` } })).statusCode).toBe(401);
    expect((await app.inject({ url: '/dashboard/data', headers: { ...J, cookie: `orderflow_operator=${Date.now()}` } })).statusCode).toBe(401);
    expect((await app.inject({ url: '/dashboard/data', headers: { ...J, cookie: `orderflow_operator=${Date.now()}.AAAA` } })).statusCode).toBe(401);
  });

  it('the public parts stay public: the form, placing an order, its page, JSON and stream, /health', async () => {
    expect((await app.inject({ url: '/orders/create' })).statusCode).toBe(200);
    const o = await app.inject({ method: 'POST', url: '/orders', payload: { customer_email: 'pub@example.com', amount: '1.00' }, headers: J });
    expect(o.statusCode).toBe(201);
    expect((await app.inject({ url: `/orders/${o.json().id}`, headers: J })).statusCode).toBe(200);
    expect((await app.inject({ url: `/orders/${o.json().id}` })).statusCode).toBe(200);
    const health = (await app.inject({ url: '/health' })).json();
    expect(health).toMatchObject({ status: 'ok', process: 'web' });
    expect(health).not.toHaveProperty('pid');
    expect((await app.inject({ url: '/metrics' })).body).not.toContain('nodejs_version_info');
  });
});

describe('the operator session', () => {
  it('/signin?token= sets an HttpOnly SameSite=Lax cookie and redirects to a local page only', async () => {
    const r = await app.inject({ url: `/signin?token=${TEST_OPERATOR_TOKEN}&next=/orders?page=2` });
    expect(r.statusCode).toBe(303);
    expect(r.headers.location).toBe('/orders?page=2');
    const c = r.cookies.find((x) => x.name === 'orderflow_operator')!;
    expect(c).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    for (const next of ['//evil.example/x', 'https://evil.example', '/\\evil.example'])
      expect((await app.inject({ url: `/signin?token=${TEST_OPERATOR_TOKEN}&next=${encodeURIComponent(next)}` })).headers.location).toBe('/dashboard');
    const wrong = await app.inject({ url: '/signin?token=wrong' });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.cookies.find((x) => x.name === 'orderflow_operator')).toBeUndefined();
  });

  it('the sign-in form needs its CSRF token', async () => {
    const { cookie, token } = await formTokens(app, '/signin');
    const form = (body: Record<string, string>, headers: Record<string, string> = {}) =>
      app.inject({
        method: 'POST',
        url: '/signin',
        payload: new URLSearchParams(body).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, ...headers },
      });
    expect((await form({ token: TEST_OPERATOR_TOKEN })).statusCode).toBe(403);
    const ok = await form({ token: TEST_OPERATOR_TOKEN, _csrf: token, next: '/dashboard/dlq' });
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe('/dashboard/dlq');
    expect((await form({ token: 'wrong', _csrf: token })).statusCode).toBe(401);
  });

  it('a session reads operator pages; its state changes need the CSRF token and our Origin', async () => {
    const { cookie, token } = await session();
    expect((await app.inject({ url: '/dashboard/data', headers: { ...J, cookie } })).statusCode).toBe(200);
    expect((await app.inject({ url: '/orders', headers: { cookie } })).statusCode).toBe(200);
    const publish = (headers: Record<string, string>) =>
      app.inject({ method: 'POST', url: '/dashboard/tools/publish', payload: { subject: 'demo.session' }, headers: { ...J, cookie, ...headers } });
    const host = { host: 'localhost:80' };
    expect((await publish({ ...host, origin: 'http://localhost' })).json()).toMatchObject({ error: 'csrf_invalid' });
    expect((await publish({ ...host, 'x-csrf-token': token })).json()).toMatchObject({ error: 'origin_not_allowed' });
    expect((await publish({ ...host, 'x-csrf-token': token, origin: 'http://localhost:9999' })).json()).toMatchObject({ error: 'origin_not_allowed' });
    expect((await publish({ ...host, 'x-csrf-token': token, origin: 'null', 'sec-fetch-site': 'cross-site' })).json()).toMatchObject({
      error: 'origin_not_allowed',
    });
    expect((await publish({ ...host, 'x-csrf-token': 'forged', origin: 'http://localhost' })).json()).toMatchObject({ error: 'csrf_invalid' });
    const ok = await publish({ ...host, 'x-csrf-token': token, origin: 'http://localhost' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ published: true, subject: 'demo.session' });
    expect((await publish({ ...host, 'x-csrf-token': token, 'sec-fetch-site': 'same-origin' })).statusCode).toBe(200);
  });

  it('a token from a bearer header needs no CSRF token (a cross-site page cannot send that header)', async () => {
    const r = await app.inject({ method: 'POST', url: '/dashboard/tools/publish', payload: { subject: 'demo.bearer' }, headers: { ...J, ...OPERATOR } });
    expect(r.json()).toMatchObject({ published: true });
  });
});

describe('POST /orders from browsers', () => {
  it('a form post needs the CSRF token; a cross-origin one is refused; JSON without cookies is a script', async () => {
    const form = (body: Record<string, string>, headers: Record<string, string>) =>
      app.inject({
        method: 'POST',
        url: '/orders',
        payload: new URLSearchParams(body).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', ...headers },
      });
    const fields = { customer_email: 'csrf@example.com', amount: '3.00' };
    expect((await form(fields, {})).statusCode).toBe(403);
    const { cookie, token } = await formTokens(app);
    expect((await form(fields, { cookie })).statusCode).toBe(403);
    expect((await form({ ...fields, _csrf: token }, { cookie, host: 'localhost:80', origin: 'http://evil.example' })).statusCode).toBe(403);
    expect((await form({ ...fields, _csrf: token }, { cookie })).statusCode).toBe(303);
    // text/plain (what a cross-site form can send besides a form) is not accepted at all.
    const plain = await app.inject({
      method: 'POST',
      url: '/orders',
      payload: 'customer_email=a@b.c&amount=1',
      headers: { 'content-type': 'text/plain', ...J },
    });
    expect(plain.statusCode).toBeGreaterThanOrEqual(400);
    expect(plain.statusCode).toBeLessThan(500);
    // JSON with our cookies is treated as a browser's: it needs the token too.
    expect((await app.inject({ method: 'POST', url: '/orders', payload: fields, headers: { ...J, cookie } })).statusCode).toBe(403);
    expect(
      (await app.inject({ method: 'POST', url: '/orders', payload: fields, headers: { ...J, host: 'localhost:80', origin: 'http://evil.example' } }))
        .statusCode,
    ).toBe(403);
    expect((await app.inject({ method: 'POST', url: '/orders', payload: fields, headers: J })).statusCode).toBe(201);
  });
});

describe('Host header (DNS rebinding)', () => {
  it('refuses names it is not known by, answers loopback, HOST and ALLOWED_HOSTS', async () => {
    for (const host of ['evil.example', 'evil.example:3000', '127.0.0.1.nip.io', 'localhost.evil.example', 'admin.example.com:80']) {
      const r = await app.inject({ url: '/orders/create', headers: { host } });
      expect(r.statusCode, host).toBe(403);
      expect(r.json()).toMatchObject({ error: 'host_not_allowed' });
      expect(r.headers['content-security-policy']).toBeDefined();
    }
    for (const host of ['localhost:3000', '127.0.0.1:1234', '[::1]:3000', 'shop.example.com', 'SHOP.example.com:443', 'admin.example.com:8443'])
      expect((await app.inject({ url: '/orders/create', headers: { host } })).statusCode, host).toBe(200);
    // Probes call by IP address.
    expect((await app.inject({ url: '/health', headers: { host: '10.1.2.3:3000' } })).statusCode).toBe(200);
  });
});

describe('operator tools cannot hurt production', () => {
  const tool = (url: string, payload: unknown) => app.inject({ method: 'POST', url, payload: payload as object, headers: { ...J, ...OPERATOR } });

  it("publish and request refuse orderflow's own subjects unless inject is true", async () => {
    for (const subject of ['orders.test', 'orders.created', 'jobs.fulfillment.demo', 'dlq.activity', 'orderflow.heartbeat']) {
      const r = await tool('/dashboard/tools/publish', { subject, payload: '{}' });
      expect(r.statusCode, subject).toBe(400);
      expect(r.json()).toMatchObject({ error: 'protected_subject', message: expect.stringContaining('inject') });
      expect((await tool('/dashboard/tools/request', { subject, timeout_ms: 50 })).json()).toMatchObject({ error: 'protected_subject' });
    }
    const probe = await stack.runtime('probe-inject');
    const jsm = await probe.nats.default.jetstreamManager();
    const before = (await jsm.streams.info('ORDERS')).state.last_seq;
    const injected = await tool('/dashboard/tools/publish', { subject: 'orders.created', payload: '{}', inject: 'true' });
    expect(injected.json()).toMatchObject({ published: true, injected: true, stream: 'ORDERS', seq: before + 1 });
    // Inject mode still goes through the web app's NATS identity: a subject it may not write is refused by the server.
    const denied = await tool('/dashboard/tools/publish', { subject: 'orders.test', payload: '{}', inject: 'true' });
    expect([denied.statusCode, denied.json().error]).toEqual([502, 'publish_failed']);
    expect((await tool('/dashboard/tools/publish', { subject: 'demo.hello', payload: '{}' })).json()).toMatchObject({ published: true, injected: false });
    expect((await tool('/dashboard/tools/publish', { subject: 'orders.test', inject: 'maybe' })).json()).toMatchObject({ error: 'validation_failed' });
  });

  it('booleans from forms are booleans: "false" is false', async () => {
    for (const [given, fail] of [
      ['false', false],
      ['true', true],
      [false, false],
      [true, true],
      ['0', false],
      ['on', true],
      ['off', false],
    ] as const)
      expect((await tool('/dashboard/tools/job', { message: 'b', fail: given, delay_ms: 1000 })).json(), String(given)).toMatchObject({
        dispatched: true,
        fail,
      });
    expect((await tool('/dashboard/tools/job', { fail: 'perhaps' })).statusCode).toBe(400);
  });

  it('job delays and run_at are bounded to 24 h', async () => {
    expect((await tool('/dashboard/tools/job', { delay_ms: 86_400_000 })).statusCode).toBe(200);
    expect((await tool('/dashboard/tools/job', { delay_ms: 86_400_001 })).json()).toMatchObject({
      error: 'validation_failed',
      fields: { delay_ms: [expect.stringContaining('24 h')] },
    });
    expect((await tool('/dashboard/tools/job', { delay_ms: 3_600_000_000 })).statusCode).toBe(400);
    const soon = new Date(Date.now() + 23 * 3600_000).toISOString();
    const r = (await tool('/dashboard/tools/job', { run_at: soon })).json();
    expect(Math.abs(Date.parse(r.run_at) - Date.parse(soon))).toBeLessThan(5000);
    expect((await tool('/dashboard/tools/job', { run_at: new Date(Date.now() + 25 * 3600_000).toISOString() })).json()).toMatchObject({
      fields: { run_at: [expect.stringContaining('24 h')] },
    });
    expect((await tool('/dashboard/tools/job', { run_at: 'tomorrow' })).statusCode).toBe(400);
    expect((await tool('/dashboard/tools/job', { run_at: soon, delay_ms: 5 })).statusCode).toBe(400);
  });

  it('dead letters page by sequence', async () => {
    const probe = await stack.runtime('probe-dlq');
    for (let i = 0; i < 5; i++) await probe.js.publish('dlq.test', new TextEncoder().encode(`letter ${i}`));
    const jsm = await probe.nats.default.jetstreamManager();
    const first = (await app.inject({ url: '/dashboard/dlq?limit=2', headers: { ...J, ...OPERATOR } })).json();
    expect(first.items).toHaveLength(2);
    // A hole in the sequence (a retried letter) is skipped in one lookup.
    await jsm.streams.deleteMessage('DLQ', first.items[1].seq + 1);
    const second = (await app.inject({ url: `/dashboard/dlq?limit=2&after=${first.next_after}`, headers: { ...J, ...OPERATOR } })).json();
    expect(second.items.map((d: { seq: number }) => d.seq)).toEqual([first.items[1].seq + 2, first.items[1].seq + 3]);
    expect(second.next_after).toBe(null);
    expect((await app.inject({ url: '/dashboard/dlq?limit=1000', headers: { ...J, ...OPERATOR } })).statusCode).toBe(400);
    const retried = (await tool(`/dashboard/dlq/${first.items[0].seq}/retry`, {})).json();
    expect(retried).toMatchObject({ error: 'not_retryable', message: expect.stringContaining('nothing to send it back to') });
    // A letter whose subject no stream takes any more: the retry fails, says so, and keeps it.
    const h = headers();
    h.set('Orderflow-Dlq-Subject', 'nowhere.gone');
    h.set('Orderflow-Dlq-Stream', 'GONE');
    const { seq } = await probe.js.publish('dlq.test', new TextEncoder().encode('x'), { headers: h });
    const failed = await tool(`/dashboard/dlq/${seq}/retry`, {});
    expect(failed.statusCode).toBe(409);
    expect(failed.json()).toMatchObject({ error: 'retry_failed', message: expect.stringContaining('stays in the dead letters') });
    expect((await app.inject({ url: `/dashboard/dlq/${seq}`, headers: { ...J, ...OPERATOR } })).statusCode).toBe(200);
  });
});

describe('limits', () => {
  it('429 with Retry-After past the per-IP limits (RATE_LIMIT_ORDERS_PER_MIN, RATE_LIMIT_OPERATOR_PER_MIN)', async () => {
    const rt = await stack.runtime('web-limited');
    const a = await buildApp({ ...rt, config: { ...rt.config, RATE_LIMIT_ORDERS_PER_MIN: 3, RATE_LIMIT_OPERATOR_PER_MIN: 2 } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 5; i++)
        codes.push((await a.inject({ method: 'POST', url: '/orders', payload: { customer_email: 'rl@example.com', amount: '1.00' }, headers: J })).statusCode);
      expect(codes).toEqual([201, 201, 201, 429, 429]);
      const over = await a.inject({ method: 'POST', url: '/orders', payload: { customer_email: 'rl@example.com', amount: '1.00' }, headers: J });
      expect(over.json()).toMatchObject({ error: 'rate_limited', message: expect.stringContaining('retry in') });
      expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
      const tools: number[] = [];
      for (let i = 0; i < 3; i++)
        tools.push(
          (await a.inject({ method: 'POST', url: '/dashboard/tools/publish', payload: { subject: 'demo.rl' }, headers: { ...J, ...OPERATOR } })).statusCode,
        );
      expect(tools).toEqual([200, 200, 429]);
      // Another address has its own allowance.
      expect(
        (
          await a.inject({
            method: 'POST',
            url: '/orders',
            remoteAddress: '127.0.0.9',
            payload: { customer_email: 'rl@example.com', amount: '1.00' },
            headers: J,
          })
        ).statusCode,
      ).toBe(201);
    } finally {
      await a.close();
    }
  });

  it("Fastify's own 400, 414 and 431 answers carry the security headers and the error shape", async () => {
    const port = new URL(base).port;
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const s = tcpConnect(Number(port), '127.0.0.1', () => s.write(text));
        let out = '';
        s.on('data', (d) => (out += d.toString()));
        s.on('close', () => resolve(out));
        s.on('error', reject);
        s.setTimeout(10_000, () => s.destroy());
      });
    const check = (res: string, status: number, code: string) => {
      expect(res.split('\r\n')[0]).toContain(` ${status} `);
      expect(res.toLowerCase()).toContain('content-security-policy:');
      expect(res.toLowerCase()).toContain('x-content-type-options: nosniff');
      expect(JSON.parse(res.slice(res.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: code, message: expect.any(String) });
    };
    check(await raw('GARBAGE\r\n\r\n'), 400, 'bad_request');
    check(await raw(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), 431, 'headers_too_large');
    check(await raw(`GET /orders/${'a'.repeat(200)} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`), 414, 'uri_too_long');
    check(await raw(`GET /orders/%E0%A4%A HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`), 400, 'bad_request');
  });
});

describe('slow clients', () => {
  it('a body that trickles in gets 408 once HTTP_REQUEST_TIMEOUT_MS has passed, and the socket is closed', async () => {
    const slowStack = await startStack({ PORT: '0', HTTP_REQUEST_TIMEOUT_MS: '1000' });
    const web = await startWeb(await slowStack.runtime('web-slow'));
    try {
      const answer = await new Promise<string>((resolve) => {
        const s = tcpConnect(Number(new URL(web.url).port), '127.0.0.1', () =>
          s.write(`POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"customer_email":`),
        );
        let out = '';
        // One more byte now and then, never the whole body.
        const drip = setInterval(() => s.writable && s.write(' '), 200);
        s.on('data', (d) => (out += d.toString()));
        s.on('close', () => {
          clearInterval(drip);
          resolve(out);
        });
        s.on('error', () => undefined);
        s.setTimeout(20_000, () => s.destroy());
      });
      expect(answer.split('\r\n')[0]).toContain(' 408 ');
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: 'request_timeout' });
    } finally {
      await web.stop();
      await slowStack.stop();
    }
  });
});
