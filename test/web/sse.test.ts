import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricEvents } from '../../src/events/contracts.js';
import { createEvent } from '../../src/events/envelope.js';
import { encodeJson } from '../../src/nats/codec.js';
import { startWeb } from '../../src/web/server.js';
import { startStack, TEST_OPERATOR_TOKEN, type TestStack, waitFor } from '../helpers/stack.js';

/**
 * 500 idle server-sent-event clients against caps of 450 in total and 50 per address, from ten
 * loopback addresses (127.0.0.2 …): the caps hold, the shop still takes orders, and a client that
 * stops reading is dropped instead of buffered for.
 */
let stack: TestStack;
let app: FastifyInstance;
let port: number;
let stopWeb: () => Promise<void>;
const sockets: Socket[] = [];

beforeAll(async () => {
  stack = await startStack({ PORT: '0', SSE_MAX_CLIENTS: '450', SSE_MAX_PER_IP: '50' });
  const web = await startWeb(await stack.runtime('web'));
  app = web.app;
  port = Number(new URL(web.url).port);
  stopWeb = web.stop;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await stopWeb?.();
  await stack?.stop();
});

/** Opens a stream as a client that reads the response head and then nothing more. */
function idleStream(from: string, path = `/orders/${randomUUID()}/stream`, headers = ''): Promise<{ status: number; head: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from }, () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n${headers}\r\n`),
    );
    sockets.push(socket);
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      // From here on the client never reads: whatever the server sends piles up in the kernel, then in Node.
      socket.pause();
      resolve({ status: Number(head.slice(9, 12)), head: head.slice(0, end), socket });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.setTimeout(15_000, () => reject(new Error(`no answer from ${path}`)));
  });
}

const statuses = (rs: { status: number }[]) => {
  const m: Record<number, number> = {};
  for (const r of rs) m[r.status] = (m[r.status] ?? 0) + 1;
  return m;
};

describe('SSE caps and back-pressure', () => {
  it('500 idle clients: at most 50 per address and 450 in all; the rest get 429 / 503 too_many_streams with Retry-After', async () => {
    const first = await Promise.all(Array.from({ length: 51 }, () => idleStream('127.0.0.2')));
    expect(statuses(first)).toEqual({ 200: 50, 429: 1 });
    const refused = first.find((r) => r.status === 429)!;
    expect(refused.head.toLowerCase()).toContain('retry-after: 10');

    const more: { status: number; head: string }[] = [];
    for (let ip = 3; ip <= 10; ip++) more.push(...(await Promise.all(Array.from({ length: 50 }, () => idleStream(`127.0.0.${ip}`)))));
    expect(statuses(more)).toEqual({ 200: 400 });
    const full = await Promise.all(Array.from({ length: 49 }, () => idleStream('127.0.0.11')));
    expect(statuses(full)).toEqual({ 503: 49 });
    expect(first.length + more.length + full.length).toBe(500);
    expect(app.streams.size).toBe(450);

    // The shop still takes orders with every stream slot taken.
    const order = await app.inject({
      method: 'POST',
      url: '/orders',
      payload: { customer_email: 'sse@example.com', amount: '1.00' },
      headers: { accept: 'application/json' },
    });
    expect(order.statusCode).toBe(201);
    const metrics = (await app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/orderflow_sse_streams 450/);
    expect(metrics).toMatch(/orderflow_sse_refused_total\{reason="per_ip"\} 1/);
    expect(metrics).toMatch(/orderflow_sse_refused_total\{reason="total"\} 49/);

    for (const s of sockets.splice(0)) s.destroy();
    await waitFor(() => app.streams.size === 0, 10_000, 'the closed streams released');
  });

  it('a client that stops reading is dropped under a flood of events; one that reads stays', async () => {
    // Both follow one order's page; its events are sent one by one (a dashboard's come in batches).
    const orderId = randomUUID();
    const slow = await idleStream('127.0.0.2', `/orders/${orderId}/stream`);
    expect(slow.status).toBe(200);
    const abort = new AbortController();
    const reader = await fetch(`http://127.0.0.1:${port}/orders/${orderId}/stream`, { headers: { accept: 'text/event-stream' }, signal: abort.signal });
    let received = 0;
    const reading = (async () => {
      const r = reader.body!.getReader();
      for (;;) {
        const { value, done } = await r.read().catch(() => ({ value: undefined, done: true }));
        if (done) break;
        received += value!.length;
      }
    })();
    await waitFor(() => app.streams.size === 2, 5000, 'both streams open');

    const probe = await stack.runtime('flood');
    const event = (i: number) =>
      encodeJson(
        createEvent(
          MetricEvents.orders,
          { event: 'order.shipped', order_id: orderId, amount_cents: i, lead_time_ms: 5, at: new Date().toISOString() },
          { correlationId: `flood-${i}` },
        ),
      );
    // Bounded: at most 100 000 events, in batches, until the slow client is gone.
    let sent = 0;
    while (app.streams.size === 2 && sent < 100_000) {
      for (let i = 0; i < 2000; i++) probe.nats.analytics.publish(MetricEvents.orders.subject, event(sent++));
      await probe.nats.analytics.flush();
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor(() => app.streams.size === 1, 10_000, 'the slow client dropped');
    expect((await app.inject({ url: '/metrics' })).body).toMatch(/orderflow_sse_dropped_total [1-9]/);
    // The reader is still connected and still being sent events.
    const before = received;
    for (let i = 0; i < 100; i++) probe.nats.analytics.publish(MetricEvents.orders.subject, event(sent++));
    await waitFor(() => received > before, 10_000, 'the reading client receives more');
    expect(app.streams.size).toBe(1);
    console.log(`slow SSE client dropped after ${sent} events (${received} bytes reached the reading client)`);
    abort.abort();
    await reading;
  }, 90_000);

  it("a dashboard's stream gets a flood in a few batches a second, the newest events and a count of the rest", async () => {
    const abort = new AbortController();
    const res = await fetch(`http://127.0.0.1:${port}/dashboard/stream`, {
      headers: { accept: 'text/event-stream', authorization: `Bearer ${TEST_OPERATOR_TOKEN}` },
      signal: abort.signal,
    });
    let text = '';
    const reading = (async () => {
      const r = res.body!.getReader();
      for (;;) {
        const { value, done } = await r.read().catch(() => ({ value: undefined, done: true }));
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    })();
    await waitFor(() => text.includes('event: ready'), 5000, 'the stream ready');
    const probe = await stack.runtime('flood-dashboard');
    for (let i = 0; i < 5000; i++)
      probe.nats.analytics.publish(
        MetricEvents.orders.subject,
        encodeJson(
          createEvent(
            MetricEvents.orders,
            { event: 'order.shipped', order_id: `d${i}`, amount_cents: i, lead_time_ms: 5, at: new Date().toISOString() },
            { correlationId: `d${i}` },
          ),
        ),
      );
    await probe.nats.analytics.flush();
    const batches = () =>
      [...text.matchAll(/event: events\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]!) as { events: { order_id: string }[]; skipped: number });
    await waitFor(() => batches().some((b) => b.events.some((e) => e.order_id === 'd4999')), 10_000, 'the last event delivered');
    const all = batches();
    const shown = all.reduce((n, b) => n + b.events.length, 0);
    const skipped = all.reduce((n, b) => n + b.skipped, 0);
    // Every event is either shown or counted (the previous test's flood may still be arriving too).
    expect(shown + skipped).toBeGreaterThanOrEqual(5000);
    const ours = all.flatMap((b) => b.events.map((e) => e.order_id)).filter((id) => /^d\d+$/.test(id));
    expect(new Set(ours).size).toBe(ours.length);
    expect(all.every((b) => b.events.length <= 50)).toBe(true);
    // Far fewer writes than events: each batch is one.
    expect(all.length).toBeLessThan(500);
    abort.abort();
    await reading;
  });
});
