import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { newOrder } from '../../src/orders/order.js';
import { openStorage } from '../../src/storage/open.js';
import { migrate } from '../../src/storage/sqlite/migrate.js';
import { OUTSIDE_WORK } from '../../src/storage/sqlite/writer.js';
import { describeStorageContract } from './contract.js';

describeStorageContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'orderflow-contract-'));
  const url = `file:${join(dir, 'contract.db')}`;
  migrate(url);
  return { connect: () => openStorage(url), teardown: async () => rmSync(dir, { recursive: true, force: true }) };
});

describe('SQLite adapter: group commit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orderflow-sqlite-'));
  const file = join(dir, 'w.db');
  const url = `file:${file}`;
  migrate(url);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const input = () => newOrder({ customerEmail: 'w@example.com', amountCents: 100, correlationId: 'c' });

  it('commits durably (WAL, synchronous=FULL), units queued in one turn in one transaction', async () => {
    const s = await openStorage(url);
    const conn = new Database(file);
    expect(conn.pragma('journal_mode', { simple: true })).toBe('wal');
    conn.close();
    const before = (await s.statusCounts()).total;
    await Promise.all(Array.from({ length: 20 }, () => s.run((tx) => tx.orders.insert(input()))));
    expect((await s.statusCounts()).total).toBe(before + 20);
    await s.close();
  });

  it('rolls back and rejects a unit that awaits something outside its transaction, and its tx refuses more', async () => {
    const s = await openStorage(url);
    let late: Promise<unknown> | undefined;
    const made = input();
    const stray = s.run(async (tx) => {
      await tx.orders.insert(made);
      await new Promise((r) => setTimeout(r, 20));
      late = tx.orders.insert(input()).catch((e: unknown) => e);
      return 'never';
    });
    const fine = s.run((tx) => tx.orders.insert(input()));
    await expect(stray).rejects.toThrow(OUTSIDE_WORK);
    await expect(fine).resolves.toMatchObject({ status: 'created' });
    expect(await s.order(made.id)).toBeNull();
    await new Promise((r) => setTimeout(r, 40));
    expect(await late).toMatchObject({ message: OUTSIDE_WORK });
    await s.close();
  });

  it('waits for a write lock another connection holds, without blocking the event loop, then commits', async () => {
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    const s = await openStorage(url);
    const written = s.run((tx) => tx.orders.insert(input()));
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    await new Promise((r) => setTimeout(r, 60));
    other.exec('COMMIT');
    const order = await written;
    clearInterval(ticker);
    expect(ticks).toBeGreaterThan(5);
    expect(order.status).toBe('created');
    other.close();
    await s.close();
  });

  it('reads rows as Prisma wrote them (ISO text with +00:00) and as SQLite defaults them (CURRENT_TIMESTAMP)', async () => {
    const conn = new Database(file);
    conn
      .prepare(
        `INSERT INTO orders (id, reference, customer_email, amount_cents, status, correlation_id, created_at, updated_at, paid_at)
         VALUES ('old-1', 'ORD-OLD00001', 'o@example.com', 5, 'paid', 'c', '2026-01-02T03:04:05.678+00:00', '2026-01-02T03:04:05.678+00:00', '2026-01-02T03:04:06.000+00:00')`,
      )
      .run();
    conn.prepare(`INSERT INTO nats_activities (consumer, subject, event_id, event_type, order_id, summary, payload, occurred_at) VALUES ('activity', 'orders.paid', 'e-old', 'orders.paid', 'old-1', 's', '{}', '2026-01-02T03:04:06.000+00:00')`).run();
    conn.close();
    const s = await openStorage(url);
    expect(await s.order('old-1')).toMatchObject({ createdAt: new Date('2026-01-02T03:04:05.678Z'), paidAt: new Date('2026-01-02T03:04:06.000Z'), currency: 'USD', paymentAttempts: 0 });
    const [a] = await s.activityFor('old-1');
    expect(a!.receivedAt.getTime()).toBeGreaterThan(Date.now() - 60_000);
    await s.close();
  });

  it('opens read-only without creating anything, and refuses writes', async () => {
    const missing = join(dir, 'nope', 'x.db');
    await expect(openStorage(`file:${missing}`, { readOnly: true })).rejects.toThrow();
    const ro = await openStorage(url, { readOnly: true });
    await expect(ro.ping()).resolves.toBeUndefined();
    await expect(ro.run((tx) => tx.orders.insert(input()))).rejects.toThrow(/read-only/);
    await ro.close();
  });
});
