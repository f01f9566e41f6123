import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/runtime/context.js';
import { startWeb } from '../../src/web/server.js';
import { startActivityWorker } from '../../src/workers/activity.js';
import { startFulfillmentWorker } from '../../src/workers/fulfillment.js';
import { startPaymentResponder } from '../../src/workers/payments.js';
import { OPERATOR, startStack, waitFor, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let app: FastifyInstance;
let base: string;
let webRt: Runtime;
const stops: (() => Promise<void>)[] = [];
const J = { accept: 'application/json', 'content-type': 'application/json', ...OPERATOR };

beforeAll(async () => {
  stack = await startStack({ PORT: '0' });
  webRt = await stack.runtime('web');
  const web = await startWeb(webRt);
  app = web.app;
  base = web.url;
  stops.push(web.stop);
  const w = await stack.runtime('workers');
  stops.push((await startPaymentResponder(w)).stop, startActivityWorker(w).stop, startFulfillmentWorker(w).stop);
});
afterAll(async () => {
  for (const s of stops) await s();
  await stack.stop();
});

const order = async (amount = '4.20') => (await app.inject({ method: 'POST', url: '/orders', payload: { customer_email: 'ops@example.com', amount }, headers: J })).json() as { id: string; reference: string };

describe('health, readiness and metrics', () => {
  it('/health and /ready answer JSON', async () => {
    expect((await app.inject({ url: '/health' })).json()).toMatchObject({ status: 'ok', process: 'web' });
    const ready = await app.inject({ url: '/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ ready: true, checks: { database: 'ok', nats: 'ok', jetstream: 'ok' } });
  });

  it('/metrics has the HTTP, order, event, payment, lag and dead-letter metrics', async () => {
    const o = await order();
    await waitFor(async () => (await app.inject({ url: `/orders/${o.id}`, headers: J })).json().status === 'shipped');
    // Its orders.shipped row is published a moment after the shipment commits.
    await waitFor(async () => (await webRt.storage.outboxStats()).unpublished === 0, 10_000, 'outbox published');
    const m = (await app.inject({ url: '/metrics' })).body;
    for (const line of [
      /orderflow_http_request_duration_seconds_bucket\{.*method="POST",route="\/orders",status="201"/,
      /orderflow_orders\{status="shipped"\} [1-9]/,
      /orderflow_events_published_total\{subject="orders.created"\} [1-9]/,
      /orderflow_payment_request_duration_seconds_count\{outcome="approved"\} [1-9]/,
      /orderflow_consumer_pending\{stream="ORDERS",consumer="activity"\} \d/,
      /orderflow_consumer_ack_pending\{stream="JOBS",consumer="jobs-fulfillment"\} \d/,
      /orderflow_dead_letters \d/,
      // exactly 0 (nothing unpublished), not 0.x
      /^orderflow_oldest_unprocessed_seconds\{source="outbox"\} 0$/m,
    ])
      expect(m).toMatch(line);
  });
});

describe('dashboard', () => {
  it('serves the page and its data', async () => {
    const page = await app.inject({ url: '/dashboard', headers: OPERATOR });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('id="initial-data"');
    expect(page.body).toContain('/public/dashboard.js');
    const d = (await app.inject({ url: '/dashboard/data', headers: OPERATOR })).json();
    expect(d.orders.by_status).toHaveProperty('shipped');
    expect(d.orders.throughput).toHaveLength(30);
    expect(d.orders.end_to_end_ms).toMatchObject({ samples: expect.any(Number) });
    expect(d.streams.map((s: { name: string }) => s.name)).toEqual(['ORDERS', 'JOBS', 'DLQ']);
    expect(d.streams[0].consumers[0]).toMatchObject({ name: 'activity', pending: expect.any(Number), ack_pending: expect.any(Number), redelivered: expect.any(Number) });
    expect(d.payments_service.instances).toBe(1);
  });

  it('tools: publish, request, and a job that fails on purpose reaches the dead letters and can be retried', async () => {
    expect((await app.inject({ method: 'POST', url: '/dashboard/tools/publish', payload: { subject: 'demo.tools', payload: '{"x":1}' }, headers: J })).json()).toMatchObject({ published: true });
    expect((await app.inject({ method: 'POST', url: '/dashboard/tools/publish', payload: { subject: 'orders.>' }, headers: J })).statusCode).toBe(400);
    const req = (await app.inject({ method: 'POST', url: '/dashboard/tools/request', payload: { subject: 'payments.validate', payload: '{"order_id":"d","amount_cents":5}' }, headers: J })).json();
    expect(req).toMatchObject({ ok: true });
    expect(JSON.parse(req.reply)).toMatchObject({ approved: true });
    const none = (await app.inject({ method: 'POST', url: '/dashboard/tools/request', payload: { subject: 'demo.nobody.here', timeout_ms: 200 }, headers: J })).json();
    expect(none).toMatchObject({ ok: false, error: expect.stringContaining('503') });

    const job = (await app.inject({ method: 'POST', url: '/dashboard/tools/job', payload: { message: 'boom', fail: true }, headers: J })).json();
    expect(job).toMatchObject({ dispatched: true });
    const dlq = await waitFor(async () => {
      const l = (await app.inject({ url: '/dashboard/dlq', headers: OPERATOR })).json();
      return l.items.find((i: { error: string }) => i.error.includes('boom')) as { seq: number } | undefined;
    }, 10_000, 'the failing job dead-lettered');
    const detail = (await app.inject({ url: `/dashboard/dlq/${dlq.seq}`, headers: OPERATOR })).json();
    expect(detail).toMatchObject({ consumer: 'jobs-fulfillment', deliveries: 3, retryable: true });
    expect((await app.inject({ method: 'POST', url: `/dashboard/dlq/${dlq.seq}/retry`, headers: OPERATOR })).json()).toMatchObject({ result: 'retried', subject: 'jobs.fulfillment.demo' });
    expect((await app.inject({ method: 'POST', url: `/dashboard/dlq/${dlq.seq}/retry`, headers: OPERATOR })).statusCode).toBe(404);
    expect((await app.inject({ url: '/dashboard/dlq/999999', headers: OPERATOR })).statusCode).toBe(404);
  });

  it('the order stream pushes an event about that order as it happens', async () => {
    const o = await order('1.00');
    const res = await fetch(`${base}/orders/${o.id}/stream`, { headers: { accept: 'text/event-stream' }, signal: AbortSignal.timeout(10_000) });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    // Its orders.created again (the newest stored one is this order's): the stream must pass it on.
    const probe = await stack.runtime('probe');
    const stored = await (await probe.nats.default.jetstreamManager()).streams.getMessage('ORDERS', { last_by_subj: 'orders.created' });
    await probe.js.publish('orders.created', stored.data);
    let text = '';
    while (!text.includes('order-event')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    expect(text).toContain(o.id);
  });
});
