import { connect, type NatsConnection, type NatsError } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IDENTITY_KINDS, type IdentityKind } from '../../src/nats/auth/permissions.js';
import { openNats } from '../../src/nats/connections.js';
import { DLQ_STREAM } from '../../src/nats/dead-letters.js';
import { JOBS_STREAM, ORDERS_STREAM } from '../../src/nats/topology.js';
import { startStack, type TestStack } from '../helpers/stack.js';

/**
 * The generated authorization, against a real nats-server: nobody gets in without an identity,
 * and each identity is refused what its process never does (a publish, a subscription, and the
 * JetStream API's deletes, which only `setup` may use).
 */
let stack: TestStack;
const conns = new Map<string, NatsConnection>();

beforeAll(async () => {
  stack = await startStack();
  for (const kind of IDENTITY_KINDS) conns.set(kind, await openNats(kind, stack.config, { name: `perm-test:${kind}`, reconnect: true }));
});
afterAll(async () => {
  await Promise.allSettled([...conns.values()].map((nc) => nc.close()));
  await stack.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether the server answers `act` with a permissions violation on `subject` (within 3 s). */
async function refused(nc: NatsConnection, subject: string, act: () => unknown): Promise<boolean> {
  let seen = false;
  const watch = (async () => {
    for await (const s of nc.status()) {
      const ctx = (s as { permissionContext?: { subject: string } }).permissionContext;
      if (s.type === 'error' && ctx?.subject === subject) {
        seen = true;
        return;
      }
    }
  })();
  void watch;
  act();
  await nc.flush().catch(() => undefined);
  for (let i = 0; i < 60 && !seen; i++) await sleep(50);
  return seen;
}

// What each identity must not do: a subject it may not publish, one it may not subscribe to.
const denied: Record<IdentityKind, { publish: string; subscribe: string }> = {
  web: { publish: 'orders.shipped', subscribe: 'payments.validate' },
  payments: { publish: 'orders.paid', subscribe: 'orders.created' },
  activity: { publish: 'orders.created', subscribe: 'payments.validate' },
  fulfillment: { publish: 'orders.paid', subscribe: '_INBOX_web.>' },
  reconciler: { publish: 'metrics.orders', subscribe: 'payments.validate' },
  setup: { publish: 'orders.created', subscribe: 'orders.>' },
  cli: { publish: 'metrics.orders', subscribe: 'payments.validate' },
};

describe('NATS authorization (generated, as npm start runs it)', () => {
  it('refuses an anonymous client, and one with a key it does not know', async () => {
    const anon = await connect({ servers: stack.nats.url, reconnect: false, timeout: 3000 }).then(
      async (nc) => {
        await nc.close();
        return 'connected';
      },
      (err: NatsError) => err.code,
    );
    expect(anon).toBe('AUTHORIZATION_VIOLATION');
    const wrong = await connect({ servers: stack.nats.url, reconnect: false, timeout: 3000, user: 'admin', pass: 'admin' }).then(
      async (nc) => {
        await nc.close();
        return 'connected';
      },
      (err: NatsError) => err.code,
    );
    expect(wrong).toBe('AUTHORIZATION_VIOLATION');
  });

  it.each(IDENTITY_KINDS)('%s is refused a publish and a subscription it has no business with', async (kind) => {
    const nc = conns.get(kind)!;
    const { publish, subscribe } = denied[kind];
    expect(await refused(nc, publish, () => nc.publish(publish, new TextEncoder().encode('{}'))), `${kind} publish ${publish}`).toBe(true);
    expect(await refused(nc, subscribe, () => nc.subscribe(subscribe)), `${kind} subscribe ${subscribe}`).toBe(true);
    expect(nc.isClosed()).toBe(false);
  });

  it.each(IDENTITY_KINDS.filter((k) => k !== 'setup'))('%s may not delete or purge streams, nor delete consumers', async (kind) => {
    const jsm = await conns.get(kind)!.jetstreamManager({ checkAPI: false });
    for (const stream of [ORDERS_STREAM, DLQ_STREAM, JOBS_STREAM])
      await expect(jsm.streams.delete(stream), `${kind} delete ${stream}`).rejects.toThrow(/permission/i);
    await expect(jsm.streams.purge(ORDERS_STREAM)).rejects.toThrow(/permission/i);
    await expect(jsm.consumers.delete(JOBS_STREAM, 'jobs-fulfillment')).rejects.toThrow(/permission/i);
    const admin = await conns.get('setup')!.jetstreamManager();
    expect((await admin.streams.names().next()).sort()).toEqual([DLQ_STREAM, JOBS_STREAM, ORDERS_STREAM]);
  });

  it('only setup manages streams: it creates and deletes one', async () => {
    const jsm = await conns.get('setup')!.jetstreamManager();
    await jsm.streams.add({ name: 'SCRATCH', subjects: ['scratch.>'] });
    expect(await jsm.streams.delete('SCRATCH')).toBe(true);
    const web = await conns.get('web')!.jetstreamManager({ checkAPI: false });
    await expect(web.streams.add({ name: 'SCRATCH2', subjects: ['scratch2.>'] })).rejects.toThrow(/permission/i);
  });

  it('(the check itself: what an identity may do is not reported as refused)', async () => {
    const web = conns.get('web')!;
    expect(await refused(web, 'demo.control', () => web.publish('demo.control', new TextEncoder().encode('{}')))).toBe(false);
    expect(await refused(web, 'orders.*', () => web.subscribe('orders.*'))).toBe(false);
  });

  it('a reply inbox is readable only by its owner', async () => {
    const reconciler = conns.get('reconciler')!;
    expect(await refused(reconciler, '_INBOX_web.>', () => reconciler.subscribe('_INBOX_web.>'))).toBe(true);
    expect(await refused(reconciler, '>', () => reconciler.subscribe('>'))).toBe(true);
  });

  it('a heartbeat claims only its own name', async () => {
    const payments = conns.get('payments')!;
    expect(
      await refused(payments, 'orderflow.heartbeat.fulfillment', () => payments.publish('orderflow.heartbeat.fulfillment', new TextEncoder().encode('{}'))),
    ).toBe(true);
  });
});
