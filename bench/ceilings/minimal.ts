// What both minimal-intake ceilings share, so they differ only in the store: Fastify POST /orders,
// `insert` (awaited: committed and durable), one JetStream publish awaiting its ack, the answer.
// Prints {"ready":port}; SIGTERM closes everything.
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { connect } from 'nats';
import { benchNatsOptions } from '../lib.js';

export interface MinimalRow {
  id: string;
  email: string;
  amountCents: number;
  createdAt: Date;
}

export async function serveMinimalIntake(
  natsUrl: string,
  stream: string,
  insert: (row: MinimalRow) => Promise<unknown>,
  closeStore: () => Promise<unknown>,
): Promise<void> {
  const nc = await connect(benchNatsOptions(natsUrl));
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
  const js = nc.jetstream();
  const app = Fastify({ logger: false });
  app.post('/orders', async (req, reply) => {
    const b = req.body as { customer_email: string; amount: string };
    const id = randomUUID();
    await insert({ id, email: b.customer_email, amountCents: Math.round(Number(b.amount) * 100), createdAt: new Date() });
    await js.publish(`${stream}.created`, new TextEncoder().encode(JSON.stringify({ id, ...b })), { msgID: id });
    return reply.code(201).send({ id });
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(`${JSON.stringify({ ready: (app.server.address() as { port: number }).port })}\n`);
  process.once(
    'SIGTERM',
    () =>
      void (async () => {
        await app.close();
        await jsm.streams.delete(stream).catch(() => undefined);
        await nc.close();
        await closeStore();
        process.exit(0);
      })(),
  );
}
