import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { z } from 'zod';
import { createJob, Jobs } from '../../../events/jobs.js';
import { correlationHeaders } from '../../../nats/codec.js';
import { DLQ_STREAM, pageDeadLetters, retryDeadLetter, showDeadLetter } from '../../../nats/dead-letters.js';
import { publishToStream } from '../../../nats/publish.js';
import { jobMessage } from '../../../outbox/outbox.js';
import { coalesce } from '../../dashboard/coalesce.js';
import { cachedDashboardData } from '../../dashboard/data.js';
import { dlqPageQuery, jobBody, ownFilter, publishBody, requestBody, seqParam } from '../../dashboard/tools.js';
import { refuse } from '../../edge/refuse.js';
import { sendApiError } from '../../errors.js';
import type { LiveEvent } from '../../live/hub.js';
import { fieldErrors } from '../../schemas.js';

function invalid(reply: FastifyReply, error: z.ZodError) {
  const fields = fieldErrors(error);
  return sendApiError(reply, 'validation_failed', `Correct ${Object.keys(fields).join(' and ')} and try again.`, fields);
}

/** Dead letters retried per request by "Retry all" (the next click goes on from there). */
const RETRY_ALL_BATCH = 100;

/** The operator's view: pipeline, events, streams and consumers, dead letters, workers, tools. Operators only. */
export default async function dashboard(app: FastifyInstance) {
  const rt = app.rt;
  const jsm = () => rt.nats.default.jetstreamManager();
  const data = cachedDashboardData(rt, app.live);
  const dlqPage = coalesce(async (key: string) => {
    const [after, limit] = key.split(':').map(Number) as [number, number];
    return pageDeadLetters(await jsm(), { after, limit });
  });
  app.addHook('onRequest', app.operatorOnly);
  app.addHook('preHandler', app.operatorWrites);
  const tool = app.limits.operator ? { config: { rateLimit: app.limits.operator } } : {};

  app.get('/', async (_req, reply) => reply.view('dashboard', { data: await data(), csrf: reply.generateCsrf() }));
  app.get('/data', async () => data());

  // The live events (orders.*, metrics.orders) as they happen, a few batches a second.
  app.get('/stream', { sse: 'only' }, async (req, reply) => {
    const stream = app.streams.open(req, reply);
    if (!stream) return reply;
    reply.sse.keepAlive();
    // A first message commits the stream at once (headers alone would wait for the first event).
    await reply.sse.send({ event: 'ready', data: {} });
    const stop = app.live.listenBatches((events: LiveEvent[], skipped: number) => stream.send({ event: 'events', data: { events, skipped } }));
    // The feed is core NATS: while the web app reconnects it misses events, and says so.
    const unlink = app.live.onLink((state) => stream.send({ event: 'nats', data: { state } }));
    reply.sse.onClose(() => {
      stop();
      unlink();
    });
  });

  app.post('/tools/publish', tool, async (req, reply) => {
    const b = publishBody.safeParse(req.body ?? {});
    if (!b.success) return invalid(reply, b.error);
    const { subject, payload, inject } = b.data;
    const own = ownFilter(subject);
    const bytes = new TextEncoder().encode(payload);
    if (own && !inject)
      return refuse(
        req,
        reply,
        400,
        'protected_subject',
        `${subject} is one of orderflow's own subjects (${own}), read by its workers; publish to demo.… instead, or send "inject": true to inject it on purpose.`,
      );
    try {
      if (own && own !== 'orderflow.>') {
        // Injected into a stream: JetStream's ack says where it went.
        const ack = await publishToStream(rt.js, { id: randomUUID(), subject, payload: bytes, headers: correlationHeaders(req.id) }, 2000);
        req.log.warn({ subject, stream: ack.stream, seq: ack.seq }, 'operator injected a message into an orderflow stream');
        return { published: true, injected: true, subject, bytes: bytes.length, stream: ack.stream, seq: ack.seq };
      }
      rt.nats.default.publish(subject, bytes, { headers: correlationHeaders(req.id) });
      await rt.nats.default.flush();
      return { published: true, injected: !!own, subject, bytes: bytes.length };
    } catch (err) {
      // E.g. the web app's NATS identity may not publish there, or no stream answered.
      req.log.warn({ subject, err: (err as Error).message }, 'dashboard publish failed');
      return reply.code(502).send({
        error: 'publish_failed',
        message: `NATS did not take the message on ${subject}: ${(err as Error).message}. The web app's NATS identity may not publish there.`,
      });
    }
  });

  app.post('/tools/request', tool, async (req, reply) => {
    const b = requestBody.safeParse(req.body ?? {});
    if (!b.success) return invalid(reply, b.error);
    const own = ownFilter(b.data.subject);
    if (own && !b.data.inject)
      return refuse(
        req,
        reply,
        400,
        'protected_subject',
        `${b.data.subject} is one of orderflow's own subjects (${own}), read by its workers; send requests to a service subject such as payments.validate, or send "inject": true on purpose.`,
      );
    const started = performance.now();
    try {
      const m = await rt.nats.default.request(b.data.subject, new TextEncoder().encode(b.data.payload), {
        timeout: b.data.timeout_ms,
        headers: correlationHeaders(req.id),
      });
      const headers: Record<string, string[]> = {};
      for (const [k, v] of m.headers ?? []) headers[k] = v;
      return { ok: true, ms: Math.round((performance.now() - started) * 100) / 100, reply: m.string(), headers };
    } catch (err) {
      return { ok: false, ms: Math.round(performance.now() - started), error: (err as Error).message };
    }
  });

  app.post('/tools/job', tool, async (req, reply) => {
    const b = jobBody.safeParse(req.body ?? {});
    if (!b.success) return invalid(reply, b.error);
    const job = createJob(Jobs.demo, { message: b.data.message, fail: b.data.fail }, { correlationId: req.id, delayMs: b.data.delayMs });
    try {
      // The same message, and the same publish, as a job the order flow queues through the outbox.
      await publishToStream(rt.js, jobMessage(Jobs.demo, job), 2000);
    } catch (err) {
      req.log.warn({ err: (err as Error).message }, 'dashboard job dispatch failed');
      return reply.code(502).send({
        error: 'publish_failed',
        message: `JetStream did not take the job: ${(err as Error).message}. Check that the JOBS stream exists (orderflow setup).`,
      });
    }
    return { dispatched: true, job_id: job.job_id, run_at: job.run_at, fail: b.data.fail };
  });

  // Pages by sequence: ?after=<last seq of the previous page>&limit=<≤100>.
  app.get('/dlq', async (req, reply) => {
    const q = dlqPageQuery.safeParse(req.query);
    if (!q.success) return invalid(reply, q.error);
    return dlqPage(`${q.data.after}:${q.data.limit}`);
  });
  app.get('/dlq/:seq', async (req, reply) => {
    const p = seqParam.safeParse(req.params);
    const d = p.success ? await showDeadLetter(await jsm(), p.data.seq) : null;
    return d ?? reply.code(404).send({ error: 'not_found', message: 'No dead letter with that sequence; it may have been retried already.' });
  });
  app.post('/dlq/:seq/retry', tool, async (req, reply) => {
    const p = seqParam.safeParse(req.params);
    if (!p.success) return invalid(reply, p.error);
    const m = await jsm();
    const before = await showDeadLetter(m, p.data.seq);
    let result: Awaited<ReturnType<typeof retryDeadLetter>>;
    try {
      result = await retryDeadLetter(rt.js, m, p.data.seq);
    } catch (err) {
      // E.g. its subject is in no stream any more: JetStream does not take it back.
      req.log.warn({ err: (err as Error).message, seq: p.data.seq }, 'dead-letter retry failed');
      return reply.code(409).send({
        error: 'retry_failed',
        message: `Dead letter #${p.data.seq} could not go back to ${before?.subject}: ${(err as Error).message}. It stays in the dead letters.`,
      });
    }
    if (result === 'not_found')
      return reply.code(404).send({ error: 'not_found', message: `No dead letter #${p.data.seq}; it may have been retried already (see GET /dashboard/dlq).` });
    if (result === 'not_retryable')
      return reply.code(409).send({
        error: 'not_retryable',
        message: `Dead letter #${p.data.seq} was a core request, not a stream message: there is nothing to send it back to. Inspect it, then purge it.`,
      });
    return {
      result,
      seq: p.data.seq,
      subject: before?.subject ?? null,
      consumer: before?.consumer ?? null,
      message: `Dead letter #${p.data.seq} went back to ${before?.subject} for ${before?.consumer}.`,
    };
  });
  // At most RETRY_ALL_BATCH per request, so a huge dead-letter stream cannot hold a request for minutes.
  app.post('/dlq/retry-all', tool, async () => {
    const m = await jsm();
    let retried = 0;
    let skipped = 0;
    let after = 0;
    while (retried + skipped < RETRY_ALL_BATCH) {
      const page = await pageDeadLetters(m, { after, limit: RETRY_ALL_BATCH - retried - skipped });
      for (const d of page.items) {
        const r = d.retryable ? await retryDeadLetter(rt.js, m, d.seq).catch(() => 'failed' as const) : 'not_retryable';
        if (r === 'retried') retried++;
        else skipped++;
      }
      if (page.next_after === null) break;
      after = page.next_after;
    }
    const remaining = (await m.streams.info(DLQ_STREAM)).state.messages;
    return {
      retried,
      skipped,
      remaining,
      message: `Retried ${retried} dead letter(s)${skipped ? `, skipped ${skipped} that cannot be retried` : ''}; ${remaining} left.`,
    };
  });
}
