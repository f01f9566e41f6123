import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { createJob, Jobs, jobSubject } from '../../../events/jobs.js';
import { correlationHeaders, encodeJson } from '../../../nats/codec.js';
import { listDeadLetters, retryDeadLetter, showDeadLetter } from '../../../nats/dead-letters.js';
import { dashboardData } from '../../dashboard/data.js';
import type { LiveEvent } from '../../live/hub.js';
import { fieldErrors } from '../../schemas.js';
import { apiError, sendApiError } from '../../errors.js';

// A concrete subject: tokens of letters, digits, _ and -, no wildcards, not $-prefixed system subjects.
const subject = z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'a subject like orders.test (no wildcards)').max(200);
const payloadText = z.string().max(16 * 1024);
const publishBody = z.object({ subject, payload: payloadText.default('') });
const requestBody = z.object({ subject, payload: payloadText.default(''), timeout_ms: z.coerce.number().int().min(10).max(10_000).default(2000) });
const jobBody = z.object({ message: z.string().max(500).default('hello from the dashboard'), delay_ms: z.coerce.number().int().min(0).max(3_600_000).default(0), fail: z.coerce.boolean().default(false) });
const seqParam = z.object({ seq: z.coerce.number().int().positive() });

function invalid(reply: FastifyReply, error: z.ZodError) {
  const fields = fieldErrors(error);
  return sendApiError(reply, 'validation_failed', `Correct ${Object.keys(fields).join(' and ')} and try again.`, fields);
}

/** The operator's view: pipeline, events, streams and consumers, dead letters, workers, tools. */
export default async function dashboard(app: FastifyInstance) {
  const rt = app.rt;
  const jsm = () => rt.nats.default.jetstreamManager();

  app.get('/', async (_req, reply) => reply.view('dashboard', { data: await dashboardData(rt.db, rt.nats.default, await jsm(), app.live) }));
  app.get('/data', async () => dashboardData(rt.db, rt.nats.default, await jsm(), app.live));

  // Every live event (orders.*, metrics.orders) as it happens.
  app.get('/stream', { sse: 'only' }, async (_req, reply) => {
    reply.sse.keepAlive();
    // A first message commits the stream at once (headers alone would wait for the first event).
    await reply.sse.send({ event: 'ready', data: {} });
    const stop = app.live.listen((e: LiveEvent) => void reply.sse.send({ event: 'event', data: e }).catch(() => undefined));
    reply.sse.onClose(stop);
  });

  app.post('/tools/publish', async (req, reply) => {
    const b = publishBody.safeParse(req.body);
    if (!b.success) return invalid(reply, b.error);
    rt.nats.default.publish(b.data.subject, new TextEncoder().encode(b.data.payload), { headers: correlationHeaders(req.id) });
    await rt.nats.default.flush();
    return { published: true, subject: b.data.subject, bytes: Buffer.byteLength(b.data.payload) };
  });

  app.post('/tools/request', async (req, reply) => {
    const b = requestBody.safeParse(req.body);
    if (!b.success) return invalid(reply, b.error);
    const started = performance.now();
    try {
      const m = await rt.nats.default.request(b.data.subject, new TextEncoder().encode(b.data.payload), { timeout: b.data.timeout_ms, headers: correlationHeaders(req.id) });
      const headers: Record<string, string[]> = {};
      for (const [k, v] of m.headers ?? []) headers[k] = v;
      return { ok: true, ms: Math.round((performance.now() - started) * 100) / 100, reply: m.string(), headers };
    } catch (err) {
      return { ok: false, ms: Math.round(performance.now() - started), error: (err as Error).message };
    }
  });

  app.post('/tools/job', async (req, reply) => {
    const b = jobBody.safeParse(req.body);
    if (!b.success) return invalid(reply, b.error);
    const job = createJob(Jobs.demo, { message: b.data.message, fail: b.data.fail }, { correlationId: req.id, delayMs: b.data.delay_ms });
    await rt.js.publish(jobSubject(Jobs.demo), encodeJson(job), { msgID: job.job_id, headers: correlationHeaders(req.id) });
    return { dispatched: true, job_id: job.job_id, run_at: job.run_at, fail: b.data.fail };
  });

  app.get('/dlq', async () => listDeadLetters(await jsm(), 100));
  app.get('/dlq/:seq', async (req, reply) => {
    const p = seqParam.safeParse(req.params);
    const d = p.success ? await showDeadLetter(await jsm(), p.data.seq) : null;
    return d ?? reply.code(404).send(apiError('not_found', 'No dead letter with that number; see GET /dashboard/dlq.'));
  });
  app.post('/dlq/:seq/retry', async (req, reply) => {
    const p = seqParam.safeParse(req.params);
    if (!p.success) return invalid(reply, p.error);
    const result = await retryDeadLetter(rt.js, await jsm(), p.data.seq);
    if (result === 'not_found') return sendApiError(reply, 'not_found', `No dead letter #${p.data.seq}; see GET /dashboard/dlq.`);
    if (result === 'not_retryable') return sendApiError(reply, 'not_retryable', `Dead letter #${p.data.seq} cannot be put back on its subject; inspect it, then purge it.`);
    return { result };
  });
  app.post('/dlq/retry-all', async () => {
    const m = await jsm();
    const all = (await listDeadLetters(m, Number.MAX_SAFE_INTEGER)).items.filter((d) => d.retryable);
    let retried = 0;
    for (const d of all) if ((await retryDeadLetter(rt.js, m, d.seq)) === 'retried') retried++;
    return { retried };
  });
}
