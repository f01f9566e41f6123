import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuplicateKeyError, IllegalTransitionError, StorageUnavailableError } from '../../src/orders/errors.js';
import { newOrder } from '../../src/orders/order.js';
import { migrateStorage, openStorage } from '../../src/storage/open.js';
import { pgConfig } from '../../src/storage/postgres/connection.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres.js';
import { describeStorageContract } from './contract.js';

// One real server for the file; a fresh schema (`?schema=`, a few ms) for each test.
let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(() => server?.close());

describeStorageContract('postgresql', async () => {
  const url = await server.createSchema();
  await migrateStorage(url);
  return { connect: () => openStorage(url, { poolSize: 4 }), teardown: async () => {} };
});

describe('PostgreSQL adapter', () => {
  const input = () => newOrder({ customerEmail: 'p@example.com', amountCents: 100, correlationId: 'c' });
  /** A fresh migrated schema, and a storage on it. */
  const fresh = async (opts: { poolSize?: number; readOnly?: boolean } = {}) => {
    const url = await server.createSchema();
    await migrateStorage(url);
    return { url, s: await openStorage(url, opts) };
  };

  it('turns a unique violation that aborts the statement into DuplicateKeyError, and rolls the unit back', async () => {
    const { s } = await fresh();
    const id = crypto.randomUUID();
    const msg = { id, subject: 'orders.created', payload: '{}', headers: {} };
    await s.run((tx) => tx.outbox.add([msg], new Date()));
    const order = input();
    await expect(
      s.run(async (tx) => {
        await tx.orders.insert(order);
        await tx.outbox.add([msg], new Date());
      }),
    ).rejects.toBeInstanceOf(DuplicateKeyError);
    expect(await s.order(order.id)).toBeNull();
    await s.close();
  });

  it('runs many units at once on a small pool', async () => {
    const { s } = await fresh({ poolSize: 2 });
    await Promise.all(Array.from({ length: 50 }, () => s.run((tx) => tx.orders.insert(input()))));
    expect((await s.statusCounts()).total).toBe(50);
    await s.close();
  });

  /** The transactions that wrote the rows of `table` (PostgreSQL stamps each row with its writer's xmin). */
  const writers = async (url: string, table: string) => {
    const client = new pg.Client(pgConfig(url));
    await client.connect();
    try {
      return Number((await client.query(`SELECT count(DISTINCT xmin::text) AS n FROM ${table}`)).rows[0].n);
    } finally {
      await client.end();
    }
  };

  it('commits the units queued together in one transaction (group commit), work that may wait riding along', async () => {
    const { url, s } = await fresh({ poolSize: 4 });
    const orders = await Promise.all(Array.from({ length: 20 }, () => s.run((tx) => tx.orders.insert(input()))));
    expect(await writers(url, 'orders')).toBeLessThanOrEqual(2);
    // A unit that may wait 10 s is committed with the next unit nobody lets wait.
    const lazy = s.run((tx) => tx.outbox.add([{ id: crypto.randomUUID(), subject: 'orders.created', payload: '{}', headers: {} }], new Date()), {
      within: 10_000,
    });
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await Promise.all([lazy, s.run((tx) => tx.orders.transition(orders[0]!.id, 'payment_declined', {}, new Date()))]);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await writers(url, 'outbox')).toBe(1);
    await s.close();
  });

  it('settles units of one transaction as each would alone: one of two racing moves wins, a failing one is rolled back alone', async () => {
    const { s } = await fresh({ poolSize: 2 });
    const o = await s.run((tx) => tx.orders.insert(input()));
    const [paid, declined, failed, other] = await Promise.allSettled([
      s.run((tx) => tx.orders.transition(o.id, 'paid', {}, new Date())),
      s.run((tx) => tx.orders.transition(o.id, 'payment_declined', {}, new Date())),
      s.run(async (tx) => {
        await tx.orders.insert(input());
        throw new Error('fails after writing');
      }),
      s.run((tx) => tx.orders.insert(input())),
    ]);
    expect([paid.status, declined.status].sort()).toEqual(['fulfilled', 'rejected']);
    expect(((paid.status === 'rejected' ? paid : declined) as PromiseRejectedResult).reason).toBeInstanceOf(IllegalTransitionError);
    expect((failed as PromiseRejectedResult).reason.message).toBe('fails after writing');
    expect(other.status).toBe('fulfilled');
    expect((await s.statusCounts()).total).toBe(2);
    await s.close();
  });

  it('runs the batch again without a unit whose statement aborted the transaction, then that unit alone', async () => {
    const { url, s } = await fresh({ poolSize: 2 });
    const msg = { id: crypto.randomUUID(), subject: 'orders.created', payload: '{}', headers: {} };
    await s.run((tx) => tx.outbox.add([msg], new Date()));
    const unit = (duplicate: boolean) =>
      s.run(async (tx) => {
        await tx.orders.insert(input());
        await tx.outbox.add([duplicate ? msg : { ...msg, id: crypto.randomUUID() }], new Date());
      });
    const results = await Promise.allSettled([unit(false), unit(false), unit(true), unit(false), unit(false)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(DuplicateKeyError);
    expect((await s.statusCounts()).total).toBe(4);
    // The four, two of them refused only because the duplicate had aborted the transaction (25P02),
    // committed together, in one transaction.
    expect(await writers(url, 'orders')).toBe(1);
    await s.close();
  });

  it('refuses a unit that carries on after a statement failed (PostgreSQL had dropped its writes)', async () => {
    const { s } = await fresh({ poolSize: 2 });
    const msg = { id: crypto.randomUUID(), subject: 'orders.created', payload: '{}', headers: {} };
    await s.run((tx) => tx.outbox.add([msg], new Date()));
    const swallowing = s.run(async (tx) => {
      const order = await tx.orders.insert(input());
      await tx.outbox.add([msg], new Date()).catch(() => undefined);
      return order;
    });
    await expect(swallowing).rejects.toThrow(/carried on after one of its statements failed/);
    expect((await s.statusCounts()).total).toBe(0);
    await s.close();
  });

  it('prepares each statement once per connection, and replaces a connection whose statements a migration made stale', async () => {
    const { url, s } = await fresh({ poolSize: 2 });
    const o = await s.run((tx) => tx.orders.insert(input()));
    expect(await s.order(o.id)).toMatchObject({ id: o.id });
    await s.run((tx) => tx.orders.transition(o.id, 'payment_pending', {}, new Date()));
    const client = new pg.Client(pgConfig(url));
    await client.connect();
    await client.query('ALTER TABLE orders ADD COLUMN note TEXT');
    await client.end();
    // SELECT * and RETURNING * now return another row type than the prepared ones.
    expect(await s.order(o.id)).toMatchObject({ id: o.id, status: 'payment_pending' });
    await expect(s.run((tx) => tx.orders.transition(o.id, 'paid', {}, new Date()))).resolves.toMatchObject({ status: 'paid' });
    await s.close();
  });

  it('says StorageUnavailableError, naming the server, when nothing answers, and works once it does', async () => {
    const { s } = await fresh({ poolSize: 2 });
    await s.run((tx) => tx.orders.insert(input()));
    await server.stop('fast');
    try {
      const unit = s.run((tx) => tx.orders.insert(input()));
      await expect(unit).rejects.toBeInstanceOf(StorageUnavailableError);
      await expect(unit).rejects.toThrow(`PostgreSQL at 127.0.0.1:${server.port}/`);
      await expect(s.ping()).rejects.toBeInstanceOf(StorageUnavailableError);
      await expect(s.statusCounts()).rejects.toBeInstanceOf(StorageUnavailableError);
    } finally {
      await server.start();
    }
    // The pool replaces the connections the restart cut: no reopening, no lost unit afterwards.
    await s.run((tx) => tx.orders.insert(input()));
    expect((await s.statusCounts()).total).toBe(2);
    await s.close();
  });

  it('opens read-only for commands that only look', async () => {
    const { s: ro } = await fresh({ readOnly: true });
    await expect(ro.statusCounts()).resolves.toEqual({ byStatus: {}, total: 0 });
    await expect(ro.run((tx) => tx.orders.insert(input()))).rejects.toThrow(/read-only transaction/);
    await ro.close();
  });
});
