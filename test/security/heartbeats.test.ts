import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerHeartbeat } from '../../src/events/contracts.js';
import type { Runtime } from '../../src/runtime/context.js';
import { LiveHub } from '../../src/web/live/hub.js';
import { startStack, waitFor, type TestStack } from '../helpers/stack.js';

/** A heartbeat says who is up only on its own subject; the dashboard ignores one that names another process. */
let stack: TestStack;
let hub: LiveHub;
let web: Runtime;
beforeAll(async () => {
  stack = await startStack();
  web = await stack.runtime('web');
  hub = new LiveHub(web);
  hub.start();
  // Its subscriptions are in place once the server has seen them.
  await web.nats.default.flush();
});
afterAll(async () => {
  hub.stop();
  await stack.stop();
});

const beat = (name: string, pid: number, more: { host?: string; instance?: string; started_at?: string } = {}) =>
  new TextEncoder().encode(JSON.stringify({ name, pid, host: 'h', started_at: new Date().toISOString(), at: new Date().toISOString(), ...more }));

describe('heartbeats', () => {
  it('a beat naming someone other than its subject does not list a worker as up', async () => {
    const nc = await stack.connect();
    // On a host of its own: had it been taken, it would be a row of its own.
    nc.publish(WorkerHeartbeat.subjectFor('payments'), beat('fulfillment', 4242, { host: 'forged' }));
    nc.publish(WorkerHeartbeat.subjectFor('fulfillment'), beat('fulfillment', 4343));
    await nc.flush();
    await waitFor(() => hub.heartbeats.get('fulfillment@h')?.pid === 4343, 5000, 'the genuine beat');
    expect([...hub.heartbeats.values()].map((h) => h.pid)).not.toContain(4242);
  });

  it('copies of a kind are one row each; a restarted copy replaces its previous life', async () => {
    const nc = await stack.connect();
    const subject = WorkerHeartbeat.subjectFor('payments');
    const early = new Date(Date.now() - 60_000).toISOString();
    nc.publish(subject, beat('payments', 5001, { host: 'm1', instance: 'payments-1', started_at: early }));
    nc.publish(subject, beat('payments', 5002, { host: 'm1', instance: 'payments-2', started_at: early }));
    // The same instance name on another machine is another instance.
    nc.publish(subject, beat('payments', 6001, { host: 'm2', instance: 'payments-1', started_at: early }));
    await nc.flush();
    await waitFor(() => ['payments-1@m1', 'payments-2@m1', 'payments-1@m2'].every((k) => hub.heartbeats.has(k)), 5000, 'three instances');
    nc.publish(subject, beat('payments', 5003, { host: 'm1', instance: 'payments-2' }));
    await nc.flush();
    await waitFor(() => hub.heartbeats.get('payments-2@m1')?.pid === 5003, 5000, 'the restart replaces its row');
    // A late beat of the previous life does not take the row back.
    nc.publish(subject, beat('payments', 5002, { host: 'm1', instance: 'payments-2', started_at: early }));
    // Messages from one connection on one subject arrive in order: once this one is in, so is the late beat.
    nc.publish(subject, beat('payments', 5009, { host: 'm1', instance: 'payments-9' }));
    await nc.flush();
    await waitFor(() => hub.heartbeats.has('payments-9@m1'), 5000, 'the beat after the late one');
    expect(hub.heartbeats.get('payments-2@m1')?.pid).toBe(5003);
  });
});
