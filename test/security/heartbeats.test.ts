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

const beat = (name: string, pid: number) => new TextEncoder().encode(JSON.stringify({ name, pid, host: 'h', started_at: new Date().toISOString(), at: new Date().toISOString() }));

describe('heartbeats', () => {
  it('a beat naming someone other than its subject does not list a worker as up', async () => {
    const nc = await stack.connect();
    nc.publish(WorkerHeartbeat.subjectFor('payments'), beat('fulfillment', 4242));
    nc.publish(WorkerHeartbeat.subjectFor('fulfillment'), beat('fulfillment', 4343));
    await nc.flush();
    await waitFor(() => hub.heartbeats.has('fulfillment:4343'), 5000, 'the genuine beat');
    expect(hub.heartbeats.has('fulfillment:4242')).toBe(false);
  });
});
