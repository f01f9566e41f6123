import { randomUUID } from 'node:crypto';
import type { JetStreamClient } from 'nats';
import type { z } from 'zod';
import { jobSubject, type JobDefinition, type JobEnvelope } from '../events/jobs.js';
import type { DispatchOptions, JobDispatcher } from '../orders/ports.js';
import { correlationHeaders, encodeJson } from '../nats/codec.js';

/**
 * The PoC's `FulfillOrderJob::dispatch()->onConnection('nats')`, on JetStream: a job is a message
 * on jobs.<queue>.<name> in the JOBS work-queue stream. A delay is carried as `run_at`, and the
 * worker holds the job back until then (works on every server version, unlike server-side
 * message scheduling, which needs NATS 2.12).
 */
export class JetStreamJobQueue implements JobDispatcher {
  constructor(private readonly js: JetStreamClient) {}

  async dispatch<S extends z.ZodType>(job: JobDefinition<S>, payload: z.input<S>, options: DispatchOptions): Promise<string> {
    const now = new Date();
    const envelope: JobEnvelope = {
      job_id: randomUUID(),
      name: job.name,
      payload: job.payload.parse(payload),
      dispatched_at: now.toISOString(),
      run_at: new Date(now.getTime() + Math.max(0, options.delayMs ?? 0)).toISOString(),
      correlation_id: options.correlationId,
    };
    await this.js.publish(jobSubject(job), encodeJson(envelope), {
      msgID: envelope.job_id,
      headers: correlationHeaders(options.correlationId),
    });
    return envelope.job_id;
  }
}
