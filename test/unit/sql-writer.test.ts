import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { SqlWriter } from '../../src/db/sql.js';
import { insertOrder, OrderRepository, transitionOrder } from '../../src/orders/repository.js';
import { IllegalTransitionError } from '../../src/orders/state.js';

const dir = mkdtempSync(join(tmpdir(), 'orderflow-sql-'));
const url = `file:${join(dir, 'w.db')}`;
migrate(url);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const input = { customerEmail: 'w@example.com', amountCents: 100, correlationId: 'c' };

describe('SqlWriter', () => {
  it('commits what is queued in one turn together, and a failing unit rolls back only itself', async () => {
    const sql = new SqlWriter(url);
    const a = sql.write((tx) => insertOrder(tx, input));
    const bad = sql.write((tx) => {
      insertOrder(tx, input);
      throw new Error('unit fails after its insert');
    });
    const c = sql.write((tx) => insertOrder(tx, input));
    const [oa, ob, oc] = await Promise.allSettled([a, bad, c]);
    expect(oa.status).toBe('fulfilled');
    expect(ob).toMatchObject({ status: 'rejected', reason: new Error('unit fails after its insert') });
    expect(oc.status).toBe('fulfilled');
    const count = sql.read((tx) => (tx.stmt('SELECT COUNT(*) AS n FROM orders').get() as { n: number }).n);
    expect(count).toBe(2);
    await expect(sql.write(async () => 1)).rejects.toThrow(/must be synchronous/);
    await sql.close();
  });

  it('waits for a write lock another connection holds, without blocking the event loop, then commits', async () => {
    const other = new Database(join(dir, 'w.db'));
    other.exec('BEGIN IMMEDIATE');
    const sql = new SqlWriter(url);
    const written = sql.write((tx) => insertOrder(tx, input));
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    await new Promise((r) => setTimeout(r, 60));
    other.exec('COMMIT');
    const order = await written;
    clearInterval(ticker);
    expect(ticks).toBeGreaterThan(5);
    expect(order.status).toBe('created');
    other.close();
    await sql.close();
  });

  it('refuses illegal moves and writes rows Prisma reads back with the same values', async () => {
    const sql = new SqlWriter(url);
    const prisma = createDb(url);
    const repo = new OrderRepository(prisma, sql);
    const o = await repo.create(input);
    const paid = await repo.transition(o.id, 'paid', { paidAt: new Date('2026-01-02T03:04:05.678Z'), paymentResponse: '{}' });
    await expect(sql.write((tx) => transitionOrder(tx, o.id, 'paid'))).rejects.toBeInstanceOf(IllegalTransitionError);
    const viaPrisma = await repo.find(o.id);
    expect(viaPrisma).toEqual(paid);
    expect(viaPrisma!.paidAt!.toISOString()).toBe('2026-01-02T03:04:05.678Z');
    await prisma.$disconnect();
    await sql.close();
  });
});
