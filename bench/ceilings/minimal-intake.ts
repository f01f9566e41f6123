// Ceiling: the least an order intake can do with orderflow's parts — Fastify POST, one INSERT into
// SQLite, one JetStream publish awaiting its ack — and the same durability and commit policy as
// orderflow: the INSERT goes through the SQLite adapter's GroupCommitWriter
// (src/storage/sqlite/writer.ts), on its own table and a hand-written statement, so it is
// group-committed exactly as orderflow's writes are (everything queued in one event-loop turn in
// one transaction, a 1 ms wait for company under load, synchronous=FULL: durable before the
// publish and the answer). Committing each request on its own would handicap the ceiling and
// flatter orderflow's ratio. The HTTP and NATS half is minimal.ts, shared with the PostgreSQL ceiling.
import Database from 'better-sqlite3';
import type { CompiledQuery } from 'kysely';
import { GroupCommitWriter } from '../../src/storage/sqlite/writer.js';
import { serveMinimalIntake } from './minimal.js';

const [url, dbPath] = [process.argv[2]!, process.argv[3]!];
const conn = new Database(dbPath, { timeout: 0 });
conn.pragma('journal_mode = WAL');
conn.pragma('synchronous = FULL');
conn.exec('CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, email TEXT NOT NULL, amount_cents INTEGER NOT NULL, created_at TEXT NOT NULL)');
const db = new GroupCommitWriter(conn, (exec) => exec);
const statement = (sql: string, ...parameters: unknown[]) => ({ sql, parameters }) as unknown as CompiledQuery;
const INSERT = 'INSERT INTO orders (id, email, amount_cents, created_at) VALUES (?, ?, ?, ?)';
await serveMinimalIntake(
  url,
  'MINIMAL',
  (r) => db.run((exec) => exec.run(statement(INSERT, r.id, r.email, r.amountCents, r.createdAt.toISOString()))),
  async () => {
    await db.close();
    conn.close();
  },
);
