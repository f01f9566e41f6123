// Ceiling: the least an order intake can do — Fastify POST, one INSERT into SQLite (WAL, the
// same durability as orderflow: synchronous=FULL), one JetStream publish awaiting its ack.
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import Fastify from 'fastify';
import { connect } from 'nats';

const [url, dbPath] = [process.argv[2]!, process.argv[3]!];
const db = new Database(dbPath);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec('CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, email TEXT NOT NULL, amount_cents INTEGER NOT NULL, created_at TEXT NOT NULL)');
const insert = db.prepare('INSERT INTO orders (id, email, amount_cents, created_at) VALUES (?, ?, ?, ?)');
const nc = await connect({ servers: url });
const jsm = await nc.jetstreamManager();
await jsm.streams.add({ name: 'MINIMAL', subjects: ['minimal.>'] });
const js = nc.jetstream();

const app = Fastify({ logger: false });
app.post('/orders', async (req, reply) => {
  const b = req.body as { customer_email: string; amount: string };
  const id = randomUUID();
  insert.run(id, b.customer_email, Math.round(Number(b.amount) * 100), new Date().toISOString());
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
    db.close();
    process.exit(0);
  })(),
);
