import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuplicateKeyError, StorageUnavailableError } from '../../src/orders/errors.js';
import { newOrder } from '../../src/orders/order.js';
import type { Storage } from '../../src/orders/ports.js';
import { migrateStorage, openStorage } from '../../src/storage/open.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
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

  it('turns a unique violation that aborts the statement into DuplicateKeyError, and rolls the unit back', async () => {
    const url = await server.createSchema();
    await migrateStorage(url);
    const s = await openStorage(url);
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

  it('runs many units at once on a small pool, each its own transaction', async () => {
    const url = await server.createSchema();
    await migrateStorage(url);
    const s = await openStorage(url, { poolSize: 2 });
    await Promise.all(Array.from({ length: 50 }, () => s.run((tx) => tx.orders.insert(input()))));
    expect((await s.statusCounts()).total).toBe(50);
    await s.close();
  });

  it('says StorageUnavailableError, naming the server, when nothing answers, and works once it does', async () => {
    const url = await server.createSchema();
    await migrateStorage(url);
    const s: Storage = await openStorage(url, { poolSize: 2 });
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
    const url = await server.createSchema();
    await migrateStorage(url);
    const ro = await openStorage(url, { readOnly: true });
    await expect(ro.statusCounts()).resolves.toEqual({ byStatus: {}, total: 0 });
    await expect(ro.run((tx) => tx.orders.insert(input()))).rejects.toThrow(/read-only transaction/);
    await ro.close();
  });
});
