// Ceiling: a bare Fastify POST of a small JSON body returning 201. Prints {"ready":port}.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.post('/orders', async (req, reply) => reply.code(201).send({ ok: true, echo: req.body }));
await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ ready: (app.server.address() as { port: number }).port })}\n`);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
