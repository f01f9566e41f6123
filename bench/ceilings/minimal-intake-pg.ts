// Ceiling: minimal-intake.ts on PostgreSQL — Fastify POST, one INSERT of the same row committed
// (fsync and synchronous_commit on: durable before the publish and the answer), one JetStream
// publish awaiting its ack (minimal.ts, shared with the SQLite ceiling). The INSERT goes through
// orderflow's own PostgreSQL parts (src/storage/postgres/pool.ts): a `pg` pool of 10 connections
// (DATABASE_POOL_SIZE's default) in pipeline mode, the statement prepared once per connection, and
// the same group commit as orderflow's units (what queues while this process's transactions are
// busy shares the next one), on its own table and a hand-written statement. Committing each
// request on its own would handicap the ceiling and flatter orderflow's ratio, as on SQLite.
import type { CompiledQuery } from 'kysely';
import { openPostgresPool } from '../../src/storage/postgres/pool.js';
import { serveMinimalIntake } from './minimal.js';

const [url, databaseUrl] = [process.argv[2]!, process.argv[3]!];
const db = openPostgresPool(databaseUrl, { poolSize: 10, name: 'minimal-intake' });
const statement = (sql: string, ...parameters: unknown[]) => ({ sql, parameters }) as unknown as CompiledQuery;
await db.reads.run(
  statement('CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, email TEXT NOT NULL, amount_cents INTEGER NOT NULL, created_at TIMESTAMPTZ NOT NULL)'),
);
const writer = db.groupCommit((exec) => exec);
const INSERT = 'INSERT INTO orders (id, email, amount_cents, created_at) VALUES ($1, $2, $3, $4)';
await serveMinimalIntake(
  url,
  'MINIMAL_PG',
  (r) => writer.run((exec) => exec.run(statement(INSERT, r.id, r.email, r.amountCents, r.createdAt))),
  async () => {
    await writer.close();
    await db.end();
  },
);
