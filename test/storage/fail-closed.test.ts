import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDeadLetters } from '../../src/nats/dead-letters.js';
import { checkInvariants } from '../../src/orders/invariants.js';
import type { Runtime } from '../../src/runtime/context.js';
import { buildApp } from '../../src/web/app.js';
import { startActivityWorker } from '../../src/workers/activity.js';
import { startFulfillmentWorker } from '../../src/workers/fulfillment.js';
import { startPaymentResponder } from '../../src/workers/payments.js';
import { startReconciler } from '../../src/workers/reconciler.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres.js';
import { OPERATOR, startStack, type TestStack, waitFor } from '../helpers/stack.js';

/**
 * Issue 12, "fails closed when the database is away", on a real PostgreSQL that is stopped and
 * started again under a running system (web app, payments, activity, fulfillment, reconciler):
 * no order is accepted that cannot be stored (503), /ready says why, the workers hold their
 * messages instead of dead-lettering them, and once the database is back everything carries on
 * by itself, nothing lost.
 */
let pg: PostgresServer;
let stack: TestStack;
let web: Runtime;
let app: FastifyInstance;
let fulfillment: { stop(): Promise<void> } | undefined;
let activity: { stop(): Promise<void> } | undefined;
let workers: Runtime;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  pg = await startPostgres();
  // Two failed deliveries would dead-letter a message: the outage lasts far longer than that.
  stack = await startStack({ DATABASE_URL: await pg.createDatabase(), MAX_DELIVERIES: '2', DATABASE_POOL_SIZE: '4' });
  web = await stack.runtime('web');
  app = await buildApp(web);
  workers = await stack.runtime('workers');
  stops.push((await startPaymentResponder(workers)).stop, startReconciler(workers, { intervalMs: 250 }).stop);
});
afterAll(async () => {
  await app?.close();
  await fulfillment?.stop();
  await activity?.stop();
  for (const s of stops) await s();
  await stack?.stop();
  await pg?.close();
});

const post = (n: number) =>
  app.inject({ method: 'POST', url: '/orders', headers: { accept: 'application/json' }, payload: { customer_email: `fc${n}@example.com`, amount: `${n}.00` } });

describe('PostgreSQL stopped under a running system, then started again', () => {
  it('refuses orders with 503, reports why, holds the workers, and resumes with nothing lost', async () => {
    // Orders paid while fulfilment and activity are not running: their jobs and events wait in JetStream.
    const before = await Promise.all([1, 2, 3, 4, 5].map(post));
    expect(before.map((r) => r.statusCode)).toEqual([201, 201, 201, 201, 201]);
    const ids = before.map((r) => r.json().id as string);
    await waitFor(async () => (await web.storage.outboxStats()).unpublished === 0, 10_000, 'the outbox to be published');

    await pg.stop('fast');
    // The workers start (or carry on) while the database is away.
    fulfillment = startFulfillmentWorker(workers);
    activity = startActivityWorker(workers);

    const refused = await post(6);
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    expect(refused.json()).toEqual({
      error: 'database_unavailable',
      message: expect.stringMatching(/^The database is not answering, so nothing was stored and no order was taken; try again/),
    });
    const page = await app.inject({ url: '/orders/create' });
    expect(page.statusCode).toBe(200); // the form needs no database
    const placed = await app.inject({ method: 'GET', url: `/orders/${ids[0]}`, headers: { accept: 'application/json' } });
    expect(placed.statusCode).toBe(503);

    // Anyone sees which part is away, not where it lives; an operator also sees the cause.
    const ready = await app.inject({ url: '/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ ready: false, checks: { database: 'unavailable', nats: 'ok', jetstream: 'ok' } });
    expect(ready.body).not.toContain(String(pg.port));
    const asOperator = await app.inject({ url: '/ready', headers: OPERATOR });
    expect(asOperator.statusCode).toBe(503);
    expect(asOperator.json()).toMatchObject({
      ready: false,
      details: { database: expect.stringMatching(new RegExp(`^PostgreSQL at 127\\.0\\.0\\.1:${pg.port}/\\S+ is unavailable: `)), nats: 'ok', jetstream: 'ok' },
    });

    // Long past two deliveries' backoff: nothing was dead-lettered, nothing shipped.
    await new Promise((r) => setTimeout(r, 4000));
    const jsm = await workers.nats.default.jetstreamManager();
    expect((await listDeadLetters(jsm)).total).toBe(0);

    await pg.start();
    await waitFor(async () => (await app.inject({ url: '/ready' })).statusCode === 200, 15_000, '/ready once the database is back');
    const after = await post(7);
    expect(after.statusCode).toBe(201);
    ids.push(after.json().id as string);

    const shipped = await waitFor(
      async () => {
        const orders = await Promise.all(ids.map((id) => web.storage.order(id)));
        return orders.every((o) => o?.status === 'shipped') ? orders : null;
      },
      30_000,
      'every accepted order shipped',
    );
    expect(shipped).toHaveLength(6);
    const report = await waitFor(
      async () => {
        const r = await checkInvariants(web.storage);
        return r.unpublishedOutbox === 0 && r.final === r.accepted ? r : null;
      },
      15_000,
      'the system at rest',
    );
    // Six accepted (the refused one never stored), six final, nothing twice.
    expect(report).toMatchObject({ accepted: 6, final: 6, shippedTwice: 0, duplicateActivity: 0 });
    await waitFor(async () => (await Promise.all(ids.map((id) => web.storage.activityFor(id)))).every((a) => a.length === 3), 15_000, 'every event recorded');
    expect((await listDeadLetters(jsm)).total).toBe(0);
  });
});
