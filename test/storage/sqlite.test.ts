import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { newOrder } from '../../src/orders/order.js';
import type { Storage } from '../../src/orders/ports.js';
import { openStorage } from '../../src/storage/open.js';
import type { SqliteStorage } from '../../src/storage/sqlite/adapter.js';
import { Checkpointer } from '../../src/storage/sqlite/checkpointer.js';
import { LockHandoff } from '../../src/storage/sqlite/handoff.js';
import { migrate } from '../../src/storage/sqlite/migrate.js';
import { GroupCommitWriter, OUTSIDE_WORK } from '../../src/storage/sqlite/writer.js';
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
    const s = (await openStorage(url)) as SqliteStorage;
    const written = s.run((tx) => tx.orders.insert(input()));
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    await new Promise((r) => setTimeout(r, 60));
    // Not a count of ticks (a loaded machine stalls any process): the writer was refused more than
    // once, so it kept trying from the event loop instead of sleeping inside SQLite, and timers ran.
    const refused = s.stats().busy ?? 0;
    other.exec('COMMIT');
    const order = await written;
    clearInterval(ticker);
    expect(refused).toBeGreaterThan(1);
    expect(ticks).toBeGreaterThan(0);
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
    conn
      .prepare(
        `INSERT INTO nats_activities (consumer, subject, event_id, event_type, order_id, summary, payload, occurred_at) VALUES ('activity', 'orders.paid', 'e-old', 'orders.paid', 'old-1', 's', '{}', '2026-01-02T03:04:06.000+00:00')`,
      )
      .run();
    conn.close();
    const s = await openStorage(url);
    expect(await s.order('old-1')).toMatchObject({
      createdAt: new Date('2026-01-02T03:04:05.678Z'),
      paidAt: new Date('2026-01-02T03:04:06.000Z'),
      currency: 'USD',
      paymentAttempts: 0,
    });
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

describe('SQLite adapter: the write lock and the WAL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orderflow-sqlite-wal-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const fresh = () => {
    const file = join(dir, `db-${++n}.db`);
    migrate(`file:${file}`);
    return { file, url: `file:${file}` };
  };
  const input = () => newOrder({ customerEmail: 'w@example.com', amountCents: 100, correlationId: 'c' });
  const wal = (file: string) => {
    const conn = new Database(file, { readonly: true });
    try {
      return (conn.pragma('wal_checkpoint(NOOP)') as { log: number; checkpointed: number }[])[0]!;
    } finally {
      conn.close();
    }
  };
  /** Commits `count` units one after the other, each ten pages of WAL or more. */
  const write = async (s: Storage, count: number) => {
    for (let i = 0; i < count; i++) {
      await s.run(async (tx) => {
        const o = await tx.orders.insert(input());
        const rows = Array.from({ length: 10 }, (_, j) => ({ id: `m-${o.id}-${j}`, subject: 'orders.created', payload: 'x'.repeat(3000), headers: {} }));
        await tx.outbox.add(rows, new Date());
      });
    }
  };
  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 25));
    if (!ok()) throw new Error(`still not: ${what}`);
  };

  it('a lone unit that fails rolls back (no savepoint needed) and the next one commits', async () => {
    const { url } = fresh();
    const s = await openStorage(url);
    const made = input();
    await expect(
      s.run(async (tx) => {
        await tx.orders.insert(made);
        throw new Error('fails after writing');
      }),
    ).rejects.toThrow('fails after writing');
    expect(await s.order(made.id)).toBeNull();
    await expect(s.run((tx) => tx.orders.insert(input()))).resolves.toMatchObject({ status: 'created' });
    await s.close();
  });

  it('never checkpoints in a COMMIT: the WAL grows past SQLite’s 1000-page autocheckpoint until the checkpointer thread copies it', async () => {
    const { file, url } = fresh();
    // A checkpointer that never finds enough to do: whatever gets checkpointed, a COMMIT did.
    const s = await openStorage(url, { checkpoints: { frames: 1_000_000 } });
    await write(s, 100);
    const w = wal(file);
    expect(w.log).toBeGreaterThan(1000);
    expect(w.checkpointed).toBe(0);
    await s.close();
  });

  it('keeps the WAL bounded from its own thread while writers write', async () => {
    const { file, url } = fresh();
    const s = (await openStorage(url, { checkpoints: { everyMs: 5, frames: 100, restartFrames: 400 } })) as SqliteStorage;
    await write(s, 100);
    // A thousand frames and more: more than the WAL may keep. Once the thread has caught up, a
    // commit finds the WAL short (copied, or restarted and written from its beginning again).
    let short = false;
    for (let i = 0; i < 200 && !short; i++) {
      await write(s, 1);
      short = wal(file).log < 400 + 50;
      if (!short) await new Promise((r) => setTimeout(r, 25));
    }
    expect(short).toBe(true);
    expect(s.stats().checkpoints).toBeGreaterThan(0);
    expect(s.stats().framesCopied).toBeGreaterThan(400);
    await s.close();
  });

  it('restarts a WAL that writers kept from starting over, so the next commit writes it from its beginning', async () => {
    const { file } = fresh();
    const conn = new Database(file);
    conn.pragma('wal_autocheckpoint = 0');
    const row = conn.prepare("INSERT INTO processed_messages (consumer, message_id) VALUES ('t', ?)");
    for (let i = 0; i < 300; i++) row.run(`m-${i}-${'x'.repeat(1500)}`);
    expect(wal(file).log).toBeGreaterThan(400);
    const c = new Checkpointer(file, conn, { everyMs: 5, frames: 100, restartFrames: 400 });
    c.start();
    await until('restarted', () => c.stats.restarts > 0);
    row.run('after');
    expect(wal(file).log).toBeLessThan(10);
    await c.stop();
    conn.close();
  });

  it('goes back to SQLite’s autocheckpoint if the checkpointer thread dies', async () => {
    const { file } = fresh();
    const conn = new Database(file);
    const c = new Checkpointer(file, conn);
    expect(conn.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    c.start();
    await (c as unknown as { worker: Worker }).worker.terminate();
    await until('autocheckpoint back', () => conn.pragma('wal_autocheckpoint', { simple: true }) === 1000);
    conn.close();
  });

  it('a writer waiting for the lock takes it when another writer releases it (handoff), not on its timer', async () => {
    const { file } = fresh();
    const holder = new Database(file);
    const holderHandoff = new LockHandoff(file);
    const conn = new Database(file, { timeout: 0 });
    const handoff = new LockHandoff(file);
    // A retry timer too long for this test: only the handoff can wake the writer in time.
    const writer = new GroupCommitWriter(conn, (exec) => exec, { handoff, retryMs: 600_000 });
    holder.exec('BEGIN IMMEDIATE');
    holder.exec("INSERT INTO processed_messages (consumer, message_id) VALUES ('t', 'held')");
    const written = writer.run((exec) =>
      exec.run({ sql: "INSERT INTO processed_messages (consumer, message_id) VALUES ('t', 'waited')", parameters: [] } as never),
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(writer.stats.busy).toBeGreaterThan(0);
    holder.exec('COMMIT');
    holderHandoff.released();
    await expect(written).resolves.toBe(1);
    expect(writer.stats.waitMs).toBeGreaterThan(0);
    await writer.close();
    for (const c of [conn, holder]) c.close();
    for (const h of [handoff, holderHandoff]) h.close();
  });
});
