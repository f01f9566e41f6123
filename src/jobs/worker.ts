import type { JsMsg } from 'nats';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { MAX_MESSAGE_BYTES } from '../events/contracts.js';
import { describeZodError } from '../events/envelope.js';
import { jobEnvelopeSchema, type JobDefinition } from '../events/jobs.js';
import { ACK, type Verdict } from '../nats/consumer.js';

export interface JobContext {
  jobId: string;
  correlationId: string;
  log: Logger;
}

export interface JobHandler<S extends z.ZodType = z.ZodType> {
  job: JobDefinition<S>;
  handle(payload: z.output<S>, ctx: JobContext): Promise<void>;
}

export const handler = <S extends z.ZodType>(job: JobDefinition<S>, handle: JobHandler<S>['handle']): JobHandler =>
  ({ job, handle }) as unknown as JobHandler;

/**
 * The attempt number of a job delivery. A delayed job is held back once with nak(delay), which the
 * server counts as a delivery; that one does not count against its retries.
 */
export function jobAttempt(m: JsMsg): number {
  try {
    const env = m.json<{ run_at?: string; dispatched_at?: string }>();
    const delayed = env.run_at !== undefined && env.dispatched_at !== undefined && Date.parse(env.run_at) > Date.parse(env.dispatched_at);
    return Math.max(1, m.info.deliveryCount - (delayed ? 1 : 0));
  } catch {
    return m.info.deliveryCount;
  }
}

/**
 * Turns a JOBS message into a call of its handler. A job that is not due yet goes back with a
 * delay (nak) for exactly the time left; a job that cannot be parsed is rejected, not retried.
 */
export function jobMessageHandler(handlers: JobHandler[], log: Logger, now: () => number = Date.now) {
  const byName = new Map(handlers.map((h) => [h.job.name, h]));
  return async (m: JsMsg): Promise<Verdict> => {
    if (m.data.length > MAX_MESSAGE_BYTES) return { reject: `job is larger than ${MAX_MESSAGE_BYTES} bytes` };
    let raw: unknown;
    try {
      raw = m.json();
    } catch {
      return { reject: 'job payload is not JSON' };
    }
    const env = jobEnvelopeSchema.safeParse(raw);
    if (!env.success) return { reject: `bad job envelope: ${describeZodError(env.error)}` };
    const { job_id, name, run_at, correlation_id } = env.data;
    const h = byName.get(name);
    if (!h) return { reject: `no handler for job ${name}` };

    const wait = Date.parse(run_at) - now();
    // A few ms early (timer granularity) is run now rather than held back a second time.
    if (wait > 25) return { retryInMs: wait };
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));

    const payload = h.job.payload.safeParse(env.data.payload);
    if (!payload.success) return { reject: `bad ${name} payload: ${describeZodError(payload.error)}` };
    const jobLog = log.child({ job_id, job: name, correlation_id });
    await h.handle(payload.data, { jobId: job_id, correlationId: correlation_id, log: jobLog });
    return ACK;
  };
}
