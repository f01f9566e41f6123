import { existsSync } from 'node:fs';
import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { placeOrder } from '../../src/orders/place-order.js';
import { orderDeps, type Runtime } from '../../src/runtime/context.js';
import { startActivityWorker } from '../../src/workers/activity.js';
import { startFulfillmentWorker } from '../../src/workers/fulfillment.js';
import { startPaymentResponder } from '../../src/workers/payments.js';
import { n } from '../helpers/db.js';
import { runCli, spawnCli } from '../helpers/processes.js';
import { startStack, type TestStack, waitFor } from '../helpers/stack.js';

let stack: TestStack;
let web: Runtime;
let nc: NatsConnection;
const stops: (() => Promise<void>)[] = [];
const ids: string[] = [];
/**
 * Just before the orders were placed: a replay from here finds them however long the earlier steps
 * took (not "a minute ago": on a loaded machine the CLI steps before the replay took longer).
 */
let placedFrom: string;
const activityRows = async (orderId?: string) =>
  n(
    await stack
      .db()
      .selectFrom('nats_activities')
      .select((eb) => eb.fn.countAll().as('n'))
      .$if(orderId !== undefined, (q) => q.where('order_id', '=', orderId!))
      .executeTakeFirst(),
  );

beforeAll(async () => {
  stack = await startStack();
  web = await stack.runtime('web');
  const w = await stack.runtime('workers');
  stops.push((await startPaymentResponder(w)).stop, startActivityWorker(w).stop, startFulfillmentWorker(w).stop);
  placedFrom = new Date(Date.now() - 1000).toISOString();
  for (const amount of [100, 200, 2_000_000])
    ids.push((await placeOrder(orderDeps(web), { customerEmail: 'i@example.com', amountCents: amount, correlationId: `c-${amount}` })).id);
  await waitFor(async () => (await activityRows()) >= 8, 10_000, 'every event recorded'); // 3 created, 2 paid, 1 declined, 2 shipped
  nc = await stack.connect();
});
afterAll(async () => {
  for (const s of stops) await s();
  await nc.close();
  await stack.stop();
});

// Most steps run the CLI as a new process: slow on a busy machine (a bound, not a timing assertion).
describe('inspection and replay commands', { timeout: 120_000 }, () => {
  it('nats streams / consumers print what the NATS CLI would', async () => {
    const streams = await runCli(['nats', 'streams'], stack.env);
    expect(streams.code).toBe(0);
    expect(streams.stdout).toMatch(/ORDERS\s+orders\.>\s+R1\s+\S+\s+8\s/);
    expect(streams.stdout).toMatch(/JOBS\s+jobs\.>\s+R1\s+\S+\s+0\s/);
    expect(streams.stdout).toMatch(/consumer activity\s+pending\s+0\s+ack pending\s+0\s/);
    expect(streams.stdout).toContain('DLQ');
    const consumers = await runCli(['nats', 'consumers', 'ORDERS'], stack.env);
    expect(consumers.stdout).toMatch(/ORDERS\s+activity\s+orders\.\*\s+0\s+0\s+0/);
    const json = JSON.parse((await runCli(['nats', 'consumers', '--json'], stack.env)).stdout) as { name: string }[];
    expect(json.map((c) => c.name).sort()).toEqual(['activity', 'jobs-delayed-fulfillment', 'jobs-fulfillment']);
  });

  it('events tail prints stored events', async () => {
    const r = await runCli(['events', 'tail', 'orders.created', '--all', '--count', '3'], stack.env);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(3);
    expect(r.stdout).toMatch(/orders\.created\s+ORD-[0-9A-Z]{8} created for i@example\.com: 1\.00 USD/);
  });

  it('events replay into the activity consumer restores lost rows, and only those (a dry run counts them first)', async () => {
    await stack.db().deleteFrom('nats_activities').where('order_id', '=', ids[0]!).execute();
    const dry = await runCli(['events', 'replay', '--consumer', 'activity', '--dry-run'], stack.env);
    expect(JSON.parse(dry.stdout)).toMatchObject({ read: 8, would_replay: 3, already_recorded: 5, dry_run: true });
    expect(await activityRows(ids[0])).toBe(0);
    const r = await runCli(['events', 'replay', '--consumer', 'activity'], stack.env);
    expect(JSON.parse(r.stdout)).toMatchObject({ read: 8, replayed: 3, already_recorded: 5 });
    expect(await activityRows(ids[0])).toBe(3);
  });

  it('events replay --to-subject re-publishes a time range as copies', async () => {
    const got: string[] = [];
    const sub = nc.subscribe('replay.>', { callback: (_e, m) => got.push(m.subject) });
    await nc.flush();
    const r = await runCli(['events', 'replay', '--from', placedFrom, '--subject', 'orders.shipped', '--to-subject', 'replay'], stack.env);
    expect(JSON.parse(r.stdout)).toMatchObject({ read: 2, replayed: 2 });
    await waitFor(() => got.length === 2);
    expect(got).toEqual(['replay.orders.shipped', 'replay.orders.shipped']);
    sub.unsubscribe();
    const none = await runCli(['events', 'replay', '--from', new Date(Date.now() + 60_000).toISOString(), '--to-subject', 'replay'], stack.env);
    expect(JSON.parse(none.stdout)).toMatchObject({ read: 0 });
    expect((await runCli(['events', 'replay', '--to-subject', 'x', '--consumer', 'activity'], stack.env)).code).toBe(2);
    const dry = await runCli(['events', 'replay', '--from', placedFrom, '--subject', 'orders.shipped', '--to-subject', 'replay', '--dry-run'], stack.env);
    expect(JSON.parse(dry.stdout)).toMatchObject({ read: 2, would_replay: 2, dry_run: true });
  });

  it('refuses a --to-subject whose copies would land in one of orderflow’s own streams', async () => {
    for (const prefix of ['orders', 'jobs', 'dlq']) {
      const r = await runCli(['events', 'replay', '--to-subject', prefix], stack.env);
      expect(r.code, prefix).toBe(2);
      expect(r.stderr).toMatch(/would be stored in orderflow's (ORDERS|JOBS|DLQ) stream/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('a failure is one line naming the cause, the fix and the NATS server or database used', async () => {
    const nope = await runCli(['nats', 'consumers', 'NOPE'], stack.env);
    expect(nope.code).toBe(1);
    expect(nope.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/no stream named NOPE; the streams are .*ORDERS.*\[NATS nats:\/\/127\.0\.0\.1:\d+\]$/),
    ]);
    const missing = `${stack.dir}/elsewhere/orderflow.db`;
    const check = await runCli(['check'], { ...stack.env, DATABASE_URL: `file:${missing}` });
    expect(check.code).toBe(1);
    expect(check.stderr.trim().split('\n')).toEqual([expect.stringContaining(`no database at ${missing}`)]);
    expect(existsSync(`${stack.dir}/elsewhere`)).toBe(false);
    const down = await runCli(['nats', 'streams'], { ...stack.env, NATS_URL: 'nats://127.0.0.1:1' });
    expect(down.code).toBe(1);
    expect(down.stderr.trim().split('\n')).toEqual([expect.stringMatching(/cannot reach the NATS server.*\[NATS nats:\/\/127\.0\.0\.1:1\]/)]);
  });

  it('projections rebuild agrees with the database, and reports a difference when there is one', async () => {
    const ok = await runCli(['projections', 'rebuild', '--json'], stack.env);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ events: 8, inStream: 3, inDatabase: 3, matching: 3, statusMismatch: [], missingFromStream: [] });
    await stack.db().updateTable('orders').set({ status: 'paid' }).where('id', '=', ids[0]!).execute();
    const bad = await runCli(['projections', 'rebuild'], stack.env);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`${ids[0]}: stream says shipped, database says paid`);
    await stack.db().updateTable('orders').set({ status: 'shipped' }).where('id', '=', ids[0]!).execute();
  });

  it('a worker serves /health, /ready and /metrics with --metrics-port', async () => {
    const w = spawnCli('payments', ['worker', 'payments', '--metrics-port', '0'], { ...stack.env, LOG_LEVEL: 'info' });
    try {
      await w.waitFor(/metrics and health on (http:\/\/127\.0\.0\.1:\d+)/);
      const url = /metrics and health on (http:\/\/127\.0\.0\.1:\d+)/.exec(w.output())![1]!;
      expect(await (await fetch(`${url}/health`)).json()).toMatchObject({ status: 'ok', process: 'payments' });
      expect(await (await fetch(`${url}/ready`)).json()).toMatchObject({ ready: true });
      // Another responder shares the queue group: ask until this one has answered some.
      const metrics = await waitFor(
        async () => {
          await nc.request('payments.validate', new TextEncoder().encode('{"order_id":"m","amount_cents":5}'), { timeout: 2000 });
          const text = await (await fetch(`${url}/metrics`)).text();
          return /orderflow_payment_requests_handled_total\{outcome="approved"\} [1-9]/.test(text) && text;
        },
        15_000,
        'a request counted by this responder',
      );
      expect(metrics).toContain('orderflow_process_resident_memory_bytes');
      // System-wide gauges come from the web app alone: this process could not keep them current.
      expect(metrics).not.toMatch(/orderflow_dead_letters|orderflow_orders\b|orderflow_consumer_pending/);
    } finally {
      expect(await w.stop()).toBe(0);
    }
  });
});
