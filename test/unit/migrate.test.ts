import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { openStorage } from '../../src/storage/open.js';
import { listMigrations, migrate } from '../../src/storage/sqlite/migrate.js';

const dir = mkdtempSync(join(tmpdir(), 'orderflow-migrate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('migrator', () => {
  it('applies every migration once and records it the way prisma migrate deploy does', () => {
    const url = `file:${join(dir, 'm.db')}`;
    const first = migrate(url);
    expect(first.applied).toEqual(listMigrations().map((m) => m.name));
    const second = migrate(url);
    expect(second).toEqual({ applied: [], alreadyApplied: first.applied });

    const db = new Database(join(dir, 'm.db'), { readonly: true });
    const rows = db.prepare('SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count FROM _prisma_migrations').all();
    expect(rows).toEqual(
      listMigrations().map((m) => ({ migration_name: m.name, checksum: m.checksum, finished_at: expect.any(Number), rolled_back_at: null, applied_steps_count: 1 })),
    );
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").all().map((r) => (r as { name: string }).name);
    expect(tables).toEqual(expect.arrayContaining(['orders', 'nats_activities', '_prisma_migrations']));
    db.close();
  });
});

describe('durability', () => {
  it('the writer commits with synchronous=FULL, although the driver would open WAL files with NORMAL', async () => {
    const { GroupCommitWriter } = await import('../../src/storage/sqlite/writer.js');
    const url = `file:${join(dir, 'm.db')}`;
    const plain = new Database(join(dir, 'm.db'));
    expect(plain.pragma('synchronous', { simple: true })).toBe(1);
    plain.close();
    // The adapter's writer connection: what GroupCommitWriter commits on.
    const spy = vi.spyOn(GroupCommitWriter.prototype, 'run');
    const storage = await openStorage(url);
    await storage.run(async () => undefined);
    const writer = spy.mock.contexts[0] as InstanceType<typeof GroupCommitWriter>;
    expect(writer.conn.pragma('synchronous', { simple: true })).toBe(2);
    spy.mockRestore();
    await storage.close();
  });
});
