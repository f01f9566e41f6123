import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BenchDb, openBenchDb } from '../../bench/db.js';
import { migratePostgres } from '../../src/storage/postgres/migrate.js';
import { dbTime } from '../../src/storage/schema.js';
import { migrate as migrateSqlite } from '../../src/storage/sqlite/migrate.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres.js';

// The bench reads orderflow's tables itself (bench/db.ts): the same rows, written as orderflow
// writes them (UTC text into each backend's real schema, from its real migrations), must read
// back as the same counts and the same instants on both, with the server's time zone far from UTC.
const T0 = Date.parse('2026-12-02T00:00:00.000Z');
const at = (s: number) => dbTime(new Date(T0 + s * 1000));
const ROWS: [string, unknown[]][] = [
  ...(
    [
      ['a', 'shipped', 0, 3],
      ['b', 'payment_declined', 1, null],
      ['c', 'created', 2, null],
      ['d', 'paid', 4, null],
    ] as const
  ).map(([id, status, created, shipped]): [string, unknown[]] => [
    'INSERT INTO orders (id, reference, customer_email, amount_cents, status, correlation_id, created_at, updated_at, shipped_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
    [id, `REF-${id}`, 'x@example.com', 1250, status, `corr-${id}`, at(created), at(created), shipped === null ? null : at(shipped)],
  ]),
  [
    'INSERT INTO outbox (id, subject, payload, headers, created_at, published_at) VALUES ($1, $2, $3, $4, $5, $6)',
    ['o1', 'orders.created', '{}', '{}', at(1), at(2)],
  ],
  [
    'INSERT INTO outbox (id, subject, payload, headers, created_at, published_at) VALUES ($1, $2, $3, $4, $5, $6)',
    ['o2', 'orders.paid', '{}', '{}', at(5), null],
  ],
  ...(
    [
      ['e1', 'orders.created', 'a', 0.5],
      ['e2', 'orders.shipped', 'a', 2.5],
      ['e3', 'orders.created', 'b', 1.5],
    ] as const
  ).map(([event, subject, order, s]): [string, unknown[]] => [
    'INSERT INTO nats_activities (consumer, subject, event_id, event_type, order_id, summary, payload, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
    ['activity', subject, event, subject, order, '', '{}', new Date(T0 + s * 1000).toISOString()],
  ]),
];

let server: PostgresServer;
const dir = mkdtempSync(join(tmpdir(), 'orderflow-benchdb-'));
beforeAll(async () => {
  server = await startPostgres({ settings: { timezone: 'Pacific/Auckland' } });
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function sqlite(): Promise<string> {
  const url = `file:${join(dir, 'o.db')}`;
  migrateSqlite(url);
  const db = new Database(join(dir, 'o.db'));
  for (const [sql, params] of ROWS) db.prepare(sql.replace(/\$\d+/g, '?')).run(...params);
  db.close();
  return url;
}

async function postgres(): Promise<string> {
  const url = await server.createDatabase();
  await migratePostgres(url);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  for (const [sql, params] of ROWS) await client.query(sql, params);
  await client.end();
  return url;
}

describe.each([
  ['SQLite', sqlite],
  ['PostgreSQL', postgres],
])('the bench reads orderflow on %s', (_name, make) => {
  let db: BenchDb;
  beforeAll(async () => {
    db = openBenchDb(await make());
  });
  afterAll(() => db?.close());

  it('counts open and final orders and the unpublished outbox, with the oldest of each', async () => {
    expect(await db.openOrders()).toEqual({ n: 2, oldest: T0 + 2000 });
    expect(await db.finished()).toBe(2);
    expect(await db.unpublished()).toEqual({ n: 1, oldest: T0 + 5000 });
  });

  it("reads each order's shipped_at and the activity events as the same instants", async () => {
    expect(await db.shippedAt(new Date(T0 + 1000))).toEqual(
      new Map([
        ['b', undefined],
        ['c', undefined],
        ['d', undefined],
      ]),
    );
    expect((await db.shippedAt(new Date(T0))).get('a')).toBe(T0 + 3000);
    expect(await db.lastActivityId()).toBe(3);
    const events = await db.events(0, 'activity', ['orders.created', 'orders.shipped']);
    expect(events.sort((x, y) => x.occurred_at - y.occurred_at)).toEqual([
      { order_id: 'a', subject: 'orders.created', occurred_at: T0 + 500 },
      { order_id: 'b', subject: 'orders.created', occurred_at: T0 + 1500 },
      { order_id: 'a', subject: 'orders.shipped', occurred_at: T0 + 2500 },
    ]);
    expect(await db.events(1, 'activity', ['orders.shipped', 'orders.shipped'])).toEqual([
      { order_id: 'a', subject: 'orders.shipped', occurred_at: T0 + 2500 },
    ]);
  });
});
