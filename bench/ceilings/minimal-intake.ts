// Ceiling: the least an order intake can do with orderflow's parts — Fastify POST, one INSERT into
// SQLite, one JetStream publish awaiting its ack — and the same durability and commit policy as
// orderflow: the INSERT goes through the SQLite adapter's GroupCommitWriter
// (src/storage/sqlite/writer.ts), on its own table and a hand-written statement, so it is group-committed exactly
// as orderflow's writes are (everything queued in one event-loop turn in one transaction, a 1 ms
// wait for company under load, synchronous=FULL: durable before the publish and the answer).
// Committing each request on its own would handicap the ceiling and flatter orderflow's ratio.
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { connect } from 'nats';
import Database from 'better-sqlite3';
import type { CompiledQuery } from 'kysely';
import { GroupCommitWriter } from '../../src/storage/sqlite/writer.js';
import { benchNatsOptions } from '../lib.js';

const [url, dbPath] = [process.argv[2]!, process.argv[3]!];
const conn = new Database(dbPath, { timeout: 0 });
conn.pragma('journal_mode = WAL');
conn.pragma('synchronous = FULL');
conn.exec('CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, email TEXT NOT NULL, amount_cents INTEGER NOT NULL, created_at TEXT NOT NULL)');
const db = new GroupCommitWriter(conn, (exec) => exec);
const statement = (sql: string, ...parameters: unknown[]) => ({ sql, parameters }) as unknown as CompiledQuery;
const INSERT = 'INSERT INTO orders (id, email, amount_cents, created_at) VALUES (?, ?, ?, ?)';
const nc = await connect(benchNatsOptions(url));
const jsm = await nc.jetstreamManager();
await jsm.streams.add({ name: 'MINIMAL', subjects: ['minimal.>'] });
const js = nc.jetstream();

const app = Fastify({ logger: false });
app.post('/orders', async (req, reply) => {
  const b = req.body as { customer_email: string; amount: string };
  const id = randomUUID();
  await db.run((exec) => exec.run(statement(INSERT, id, b.customer_email, Math.round(Number(b.amount) * 100), new Date().toISOString())));
  await js.publish('minimal.created', new TextEncoder().encode(JSON.stringify({ id, ...b })), { msgID: id });
  return reply.code(201).send({ id });
});
await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ ready: (app.server.address() as { port: number }).port })}\n`);
process.once('SIGTERM', () =>
  void (async () => {
    await app.close();
    await jsm.streams.delete('MINIMAL').catch(() => undefined);
    await nc.close();
    await db.close();
    conn.close();
    process.exit(0);
  })(),
);
