// Ceiling: the least an order intake can do with orderflow's parts — Fastify POST, one INSERT into
// SQLite, one JetStream publish awaiting its ack — and the same durability and commit policy as
// orderflow: the INSERT goes through SqlWriter (src/db/sql.ts), so it is group-committed exactly
// as orderflow's writes are (everything queued in one event-loop turn in one transaction, a 1 ms
// wait for company under load, synchronous=FULL: durable before the publish and the answer).
// Committing each request on its own would handicap the ceiling and flatter orderflow's ratio.
// The HTTP and NATS half is minimal.ts, shared with the PostgreSQL ceiling.
import { SqlWriter } from '../../src/db/sql.js';
import { serveMinimalIntake } from './minimal.js';

const [url, dbPath] = [process.argv[2]!, process.argv[3]!];
const db = new SqlWriter(`file:${dbPath}`);
await db.write((sql) => sql.stmt('CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, email TEXT NOT NULL, amount_cents INTEGER NOT NULL, created_at TEXT NOT NULL)').run());
const INSERT = 'INSERT INTO orders (id, email, amount_cents, created_at) VALUES (?, ?, ?, ?)';
await serveMinimalIntake(
  url,
  'MINIMAL',
  (r) => db.write((sql) => sql.stmt(INSERT).run(r.id, r.email, r.amountCents, r.createdAt.toISOString())),
  () => db.close(),
);
