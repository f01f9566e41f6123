import type { JetStreamClient } from 'nats';
import type { z } from 'zod';
import { createJob, jobSubject, type DispatchOptions, type JobDefinition } from '../events/jobs.js';
import type { JobDispatcher } from '../orders/ports.js';
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
    const envelope = createJob(job, payload, options);
    await this.js.publish(jobSubject(job), encodeJson(envelope), {
      msgID: envelope.job_id,
      headers: correlationHeaders(options.correlationId),
    });
    return envelope.job_id;
  }
}
