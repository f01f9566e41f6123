import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, OrderEvents } from '../../src/events/contracts.js';
import { publishToStream } from '../../src/nats/publish.js';
import { type NatsServerProcess, startNatsServer } from '../../src/nats/server-process.js';
import { eventMessage } from '../../src/outbox/outbox.js';
import { dbTime, n, testDb } from '../helpers/db.js';
import { runCli, spawnCli } from '../helpers/processes.js';
import { waitFor } from '../helpers/stack.js';

let dir: string;
let nats: NatsServerProcess;
let env: Record<string, string>;
let nc: NatsConnection;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'orderflow-cli-'));
  nats = await startNatsServer({ storeDir: join(dir, 'nats') });
  env = { NATS_URL: nats.url, DATABASE_URL: `file:${join(dir, 'cli.db')}`, DATA_DIR: dir, LOG_LEVEL: 'info', ORDERFLOW_PRETTY: '0' };
  nc = await connect({ servers: nats.url });
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

// Every step runs the CLI as a new process: slow on a busy machine (a bound, not a timing assertion).
describe('orderflow CLI', { timeout: 120_000 }, () => {
  it('has --help on every command', async () => {
    const top = await runCli(['--help'], env);
    expect(top.code).toBe(0);
    for (const cmd of ['start', 'setup', 'web', 'worker', 'dlq', 'check']) expect(top.stdout).toContain(cmd);
    for (const args of [
      ['worker', '--help'],
      ['setup', '--help'],
      ['dlq', 'retry', '--help'],
      ['start', '--help'],
    ]) {
      const r = await runCli(args, env);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toContain('Usage: orderflow');
    }
    expect((await runCli(['worker', '--help'], env)).stdout).toContain('reconciler');
  });

  it('a bad env var stops it with a message naming the variable (exit 1); a bad argument exits 2', async () => {
    const badEnv = await runCli(['setup'], { ...env, PORT: 'abc' });
    expect(badEnv.code).toBe(1);
    expect(badEnv.stderr).toContain('PORT');
    const badWorker = await runCli(['worker', 'sales'], env);
    expect(badWorker.code).toBe(2);
    expect(badWorker.stderr).toMatch(/payments.*activity.*fulfillment/);
    const badFlag = await runCli(['setup', '--frobnicate'], env);
    expect(badFlag.code).toBe(2);
    const badSeq = await runCli(['dlq', 'show', 'x'], env);
    expect(badSeq.code).toBe(2);
  });

  it('setup applies migrations and creates streams, and is idempotent', async () => {
    const first = await runCli(['setup'], env);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('migration 20261122000000_init: applied');
    expect(first.stdout).toContain('stream ORDERS: created');
    const second = await runCli(['setup', '--json'], env);
    const report = JSON.parse(second.stdout);
    expect(report.migrations.applied).toEqual([]);
    expect(report.topology.streams.every((s: { action: string }) => s.action === 'unchanged')).toBe(true);
  });

  it('setup with NATS_STREAM_REPLICAS=3 on a single server says in one line that it needs a cluster', async () => {
    const r = await runCli(['setup'], { ...env, NATS_STREAM_REPLICAS: '3' });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/NATS_STREAM_REPLICAS=3 needs a JetStream cluster.*set NATS_STREAM_REPLICAS=1/)]);
  });

  it('worker payments answers requests and exits 0 on SIGTERM', async () => {
    const w = spawnCli('payments', ['worker', 'payments'], env);
    try {
      await w.waitFor(/payment responder ready/);
      const reply = await nc.request('payments.validate', new TextEncoder().encode(JSON.stringify({ order_id: 'cli-1', amount_cents: 100 })), {
        timeout: 3000,
      });
      expect(reply.json()).toMatchObject({ approved: true, order_id: 'cli-1' });
    } finally {
      const started = Date.now();
      expect(await w.stop('SIGTERM')).toBe(0);
      expect(Date.now() - started).toBeLessThan(5000);
    }
    expect(w.output()).toContain('"msg":"stopped"');
  });

  it('worker activity records an event published while it was not running', async () => {
    const e = createEvent(
      OrderEvents.created,
      { order_id: 'cli-order', reference: 'ORD-DDDDDDDD', customer_email: 'c@example.com', amount_cents: 5, currency: 'USD' },
      { correlationId: 'cli' },
    );
    await publishToStream(nc.jetstream(), eventMessage(e));
    const w = spawnCli('activity', ['worker', 'activity'], env);
    const db = testDb(env.DATABASE_URL!);
    try {
      await waitFor(
        async () =>
          n(
            await db
              .selectFrom('nats_activities')
              .select((eb) => eb.fn.countAll().as('n'))
              .where('event_id', '=', e.event_id)
              .executeTakeFirst(),
          ) === 1,
        15_000,
        'activity row',
      );
      await w.waitFor(/orders\.created/);
    } finally {
      await db.destroy();
      expect(await w.stop('SIGINT')).toBe(0);
    }
  });

  it('dlq list | show | retry | purge operate the dead letters', { timeout: 240_000 }, async () => {
    const empty = await runCli(['dlq', 'list', '--json'], env);
    expect(empty.code).toBe(0);
    expect(JSON.parse(empty.stdout)).toMatchObject({ total: 0, items: [] });

    const w = spawnCli('fulfillment', ['worker', 'fulfillment'], env);
    try {
      await w.waitFor(/consuming/);
      await nc.jetstream().publish('jobs.fulfillment.fulfill-order', new TextEncoder().encode('{"poison":true}'));
      const listed = await waitFor(
        async () => {
          const l = JSON.parse((await runCli(['dlq', 'list', '--json'], env)).stdout) as { total: number; items: { seq: number }[] };
          return l.total === 1 ? l : null;
        },
        15_000,
        'one dead letter',
      );
      const seq = listed.items[0]!.seq;
      const human = await runCli(['dlq', 'list'], env);
      expect(human.stdout).toMatch(new RegExp(`#${seq} .* jobs-fulfillment  jobs\\.fulfillment\\.fulfill-order  deliveries=1 +bad job envelope`));
      const show = await runCli(['dlq', 'show', String(seq)], env);
      expect(show.stdout).toContain('{"poison":true}');
      expect(show.stdout).toContain('Orderflow-Dlq-Consumer: jobs-fulfillment');
      // Retried while its cause is not fixed, it comes straight back as a new dead letter.
      expect((await runCli(['dlq', 'retry', String(seq)], env)).stdout).toContain(`#${seq}: retried`);
      await waitFor(
        async () => {
          const l = JSON.parse((await runCli(['dlq', 'list', '--json'], env)).stdout) as { total: number; items: { seq: number }[] };
          return l.total === 1 && l.items[0]!.seq !== seq;
        },
        15_000,
        'the retried poison dead-lettered again',
      );
      expect((await runCli(['dlq', 'purge'], env)).stdout).toContain('purged 1 dead letter(s)');
      expect((await runCli(['dlq', 'show', String(seq)], env)).code).toBe(1);
    } finally {
      expect(await w.stop('SIGTERM')).toBe(0);
    }
  });

  it('check counts the invariants of a database that breaks some', async () => {
    const id = (n: number) => `00000000-0000-4000-8000-00000000000${n}`;
    const db = testDb(env.DATABASE_URL!);
    try {
      const now = dbTime(new Date());
      const order = (id: string, status: string) => ({
        id,
        reference: `ORD-CHK${id.slice(-4)}`,
        customer_email: 'chk@example.com',
        amount_cents: 500,
        status,
        correlation_id: `c-${id}`,
        created_at: now,
        updated_at: now,
      });
      await db
        .insertInto('orders')
        .values([order(id(1), 'shipped'), order(id(2), 'payment_declined'), order(id(3), 'paid'), order(id(4), 'shipped')])
        .execute();
      // Order 0001 shipped twice as the activity consumer received it: two events, two event ids.
      const activity = (orderId: string, subject: string) => ({
        consumer: 'activity',
        subject,
        event_id: crypto.randomUUID(),
        event_type: subject,
        order_id: orderId,
        summary: 's',
        payload: '{}',
        occurred_at: now,
      });
      await db
        .insertInto('nats_activities')
        .values([activity(id(1), 'orders.shipped'), activity(id(1), 'orders.shipped'), activity(id(4), 'orders.shipped'), activity(id(2), 'orders.declined')])
        .execute();
      await db.insertInto('outbox').values({ id: crypto.randomUUID(), subject: 'orders.paid', payload: '{}', headers: '{}', created_at: now }).execute();
    } finally {
      await db.destroy();
    }
    // And from the stream, independently: 0001 shipped under two event ids, 0004 not at all, and
    // an orders.shipped for an order the database does not have as shipped.
    const js = nc.jetstream();
    const shipped = (orderId: string) =>
      publishToStream(
        js,
        eventMessage(
          createEvent(
            OrderEvents.shipped,
            { order_id: orderId, reference: `ORD-CHK${orderId.slice(-4)}`, shipped_at: new Date().toISOString() },
            { correlationId: `c-${orderId}` },
          ),
        ),
      );
    await shipped(id(1));
    await shipped(id(1));
    await shipped(id(9));
    const check = await runCli(['check', '--json'], env);
    expect(check.code).toBe(1);
    expect(JSON.parse(check.stdout)).toMatchObject({
      accepted: 4,
      final: 3,
      byStatus: { shipped: 2, payment_declined: 1, paid: 1 },
      shippedTwice: 1,
      duplicateActivity: 1,
      unpublishedOutbox: 1,
      wire: { shippedOnWire: 2, shippedTwiceOnWire: 1, shippedNotOnWire: 1, onWireNotShipped: 1 },
    });
    const human = await runCli(['check'], env);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/accepted=4 final=3 shipped_twice=1 duplicate_activity=1/);
    expect(human.stdout).toMatch(/stream: shipped_on_wire=2 shipped_twice_on_wire=1 shipped_not_on_wire=1 on_wire_not_shipped=1/);
    const dbOnly = await runCli(['check', '--db-only', '--json'], env);
    expect(JSON.parse(dbOnly.stdout).wire).toBeUndefined();
  });

  it('the version matches package.json', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    expect((await runCli(['--version'], env)).stdout.trim()).toBe(pkg.version);
  });
});
