// Ceiling: minimal-intake.ts on PostgreSQL — Fastify POST, one INSERT of the same row committed
// (fsync and synchronous_commit on: durable before the publish and the answer), one JetStream
// publish awaiting its ack (minimal.ts, shared with the SQLite ceiling). The driver is `pg` with
// a Pool, one parameterized, prepared statement per request in autocommit: concurrent commits
// share WAL flushes inside the server, PostgreSQL's own group commit, as SQLite's ceiling shares
// one through the GroupCommitWriter. The pool has 10 connections, DATABASE_POOL_SIZE's default: what one
// orderflow web process may hold on this server.
import pg from 'pg';
import { serveMinimalIntake } from './minimal.js';

const [url, databaseUrl] = [process.argv[2]!, process.argv[3]!];
const pool = new pg.Pool({ connectionString: databaseUrl, max: 10, options: '-c synchronous_commit=on' });
await pool.query(
  'CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, email TEXT NOT NULL, amount_cents INTEGER NOT NULL, created_at TIMESTAMPTZ NOT NULL)',
);
const INSERT = { name: 'minimal-insert', text: 'INSERT INTO orders (id, email, amount_cents, created_at) VALUES ($1, $2, $3, $4)' };
await serveMinimalIntake(
  url,
  'MINIMAL_PG',
  (r) => pool.query({ ...INSERT, values: [r.id, r.email, r.amountCents, r.createdAt] }),
  () => pool.end(),
);
