import type { JetStreamClient, JsMsg } from 'nats';
import { headers as natsHeaders } from 'nats';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { decode } from '../events/decode.js';
import { describeZodError } from '../events/envelope.js';
import { fromDelayLane, JOB_HOPS_HEADER, type JobDefinition, type JobEnvelope, jobEnvelopeSchema, toDelayLane } from '../events/jobs.js';
import { ACK, type Verdict } from '../nats/consumer.js';
import { publishToStream } from '../nats/publish.js';

export interface JobContext {
  jobId: string;
  correlationId: string;
  log: Logger;
}

export interface JobHandler<S extends z.ZodType = z.ZodType> {
  job: JobDefinition<S>;
  handle(payload: z.output<S>, ctx: JobContext): Promise<void>;
}

export const handler = <S extends z.ZodType>(job: JobDefinition<S>, handle: JobHandler<S>['handle']): JobHandler => ({ job, handle }) as unknown as JobHandler;

/** A job due later than this is refused (JOB_MAX_DELAY_MS): its delay can neither overflow a NAK nor outlive the JOBS stream. */
export const DEFAULT_MAX_DELAY_MS = 24 * 3600 * 1000;
/** Up to this far ahead a job is held back in its queue with nak(delay); further, it goes to the delay lane. */
export const HOLD_IN_QUEUE_MS = 1000;
/** A job that went to the delay lane this often and still is not due is looping: dead-lettered. */
export const MAX_HOPS = 3;
/** Deliveries in the delay lane before a job is taken for looping (one nak per wait is all it needs). */
export const MAX_LANE_DELIVERIES = 5;

export interface JobWorkerOptions {
  now?: () => number;
  maxDelayMs?: number;
  /** Publishes to the delay lane. Without it a job not due yet is held back with nak(delay). */
  js?: JetStreamClient;
}

/**
 * The attempt number of a job delivery. A delayed job may be held back once in its queue with
 * nak(delay), which the server counts as a delivery; that one does not count against its retries.
 * (One that comes back from the delay lane is a new message there: nothing to subtract.)
 */
export function jobAttempt(m: JsMsg): number {
  const job = parseJob(m);
  if (!job.ok) return m.info.deliveryCount;
  const { run_at, dispatched_at } = job.value;
  const delayed = !m.headers?.has(JOB_HOPS_HEADER) && Date.parse(run_at) > Date.parse(dispatched_at);
  return Math.max(1, m.info.deliveryCount - (delayed ? 1 : 0));
}

// jobAttempt and the handler both need the envelope of one delivery: it is decoded once.
const parsedJobs = new WeakMap<JsMsg, ReturnType<typeof decodeJob>>();
const decodeJob = (m: JsMsg) => decode(jobEnvelopeSchema, m.data, 'job payload', 'job envelope');
function parseJob(m: JsMsg) {
  let job = parsedJobs.get(m);
  if (!job) parsedJobs.set(m, (job = decodeJob(m)));
  return job;
}

/** Whoever published it, a job due beyond the bound is refused with a reason an operator can act on. */
const tooFar = (env: JobEnvelope, maxDelayMs: number) =>
  `job run_at ${env.run_at} is more than ${Math.round(maxDelayMs / 60_000)} min ahead (JOB_MAX_DELAY_MS); refused`;

const hopsOf = (m: JsMsg) => Number(m.headers?.get(JOB_HOPS_HEADER) || 0) || 0;

/** Re-publishes a job (same bytes and headers) on `subject`, one hop further; msg ids keep a retried move to one copy. */
async function move(js: JetStreamClient, m: JsMsg, subject: string, env: JobEnvelope, hops: number, kind: 'delay' | 'due'): Promise<void> {
  const h = natsHeaders();
  for (const [k, vs] of m.headers ?? []) {
    if (k === JOB_HOPS_HEADER || k === 'Nats-Msg-Id') continue;
    for (const v of vs) h.append(k, v);
  }
  h.set(JOB_HOPS_HEADER, String(hops));
  await publishToStream(js, { id: `${env.job_id}:${kind}:${hops}`, subject, payload: m.data, headers: h });
}

/**
 * Turns a JOBS message into a call of its handler. A job due within a second is held back for the
 * time left; one due later goes to the delay lane (and the slot it took is freed at once); one due
 * beyond JOB_MAX_DELAY_MS, or that keeps bouncing, is dead-lettered. A job that cannot be parsed is
 * rejected, not retried.
 */
export function jobMessageHandler(handlers: JobHandler[], log: Logger, opts: JobWorkerOptions | (() => number) = {}) {
  const o: JobWorkerOptions = typeof opts === 'function' ? { now: opts } : opts;
  const now = o.now ?? Date.now;
  const maxDelayMs = o.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  const byName = new Map(handlers.map((h) => [h.job.name, h]));
  return async (m: JsMsg): Promise<Verdict> => {
    const parsed = parseJob(m);
    if (!parsed.ok) return { reject: parsed.error };
    const { job_id, name, run_at, correlation_id } = parsed.value;
    const h = byName.get(name);
    if (!h) return { reject: `no handler for job ${name}` };

    const wait = Date.parse(run_at) - now();
    if (wait > maxDelayMs) return { reject: tooFar(parsed.value, maxDelayMs) };
    if (wait > HOLD_IN_QUEUE_MS && o.js) {
      const hops = hopsOf(m) + 1;
      if (hops > MAX_HOPS) return { reject: `job went to the delay lane ${hops - 1} times and is still not due (run_at ${run_at}); refused as looping` };
      await move(o.js, m, toDelayLane(m.subject), parsed.value, hops, 'delay');
      log.debug({ job_id, job: name, run_at, correlation_id }, 'job not due yet: moved to the delay lane');
      return ACK;
    }
    // A few ms early (timer granularity) is run now rather than held back a second time.
    if (wait > 25) return { retryInMs: wait };
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));

    const payload = h.job.payload.safeParse(parsed.value.payload);
    if (!payload.success) return { reject: `bad ${name} payload: ${describeZodError(payload.error)}` };
    // The job's logger is made only if the handler logs: most jobs log nothing at the usual level.
    let jobLog: Logger | undefined;
    await h.handle(payload.data, {
      jobId: job_id,
      correlationId: correlation_id,
      get log() {
        return (jobLog ??= log.child({ job_id, job: name, correlation_id }));
      },
    });
    return ACK;
  };
}

/**
 * The delay lane's consumer: holds each job back (one nak with the time left, never more than
 * JOB_MAX_DELAY_MS, so the delay in nanoseconds cannot overflow) and puts it back on its queue
 * when due. A job redelivered here more often than that takes is looping: dead-lettered.
 */
export function delayLaneHandler(js: JetStreamClient, log: Logger, opts: Omit<JobWorkerOptions, 'js'> = {}) {
  const now = opts.now ?? Date.now;
  const maxDelayMs = opts.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  return async (m: JsMsg): Promise<Verdict> => {
    const parsed = parseJob(m);
    if (!parsed.ok) return { reject: parsed.error };
    const wait = Date.parse(parsed.value.run_at) - now();
    if (wait > maxDelayMs) return { reject: tooFar(parsed.value, maxDelayMs) };
    if (m.info.deliveryCount > MAX_LANE_DELIVERIES) return { reject: `job delivered ${m.info.deliveryCount} times in the delay lane; refused as looping` };
    if (wait > 25) return { retryInMs: Math.min(wait, maxDelayMs) };
    await move(js, m, fromDelayLane(m.subject), parsed.value, hopsOf(m), 'due');
    log.debug({ job_id: parsed.value.job_id, job: parsed.value.name, correlation_id: parsed.value.correlation_id }, 'delayed job due: back on its queue');
    return ACK;
  };
}
