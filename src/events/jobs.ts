import { z } from 'zod';
import { newId } from './ids.js';

/**
 * Jobs are commands for a worker, queued on JetStream (the PoC's FulfillOrderJob on the
 * `nats` queue). Each job has a name, a queue and a zod payload; dispatch may delay it.
 */
export interface JobDefinition<S extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly queue: string;
  readonly payload: S;
}

export function defineJob<S extends z.ZodType>(def: JobDefinition<S>): JobDefinition<S> {
  if (def.queue === DELAYED) throw new Error(`"${DELAYED}" cannot be a queue name: jobs.${DELAYED}.> is the delay lane`);
  return def;
}

export const JOB_SUBJECT_PREFIX = 'jobs';
export const jobSubject = (def: Pick<JobDefinition, 'queue' | 'name'>) => `${JOB_SUBJECT_PREFIX}.${def.queue}.${def.name}`;
export const queueSubjects = (queue: string) => `${JOB_SUBJECT_PREFIX}.${queue}.>`;

/**
 * The delay lane: a job that is not due yet waits on jobs.delayed.<queue>.<name>, under a consumer
 * of its own, and comes back to jobs.<queue>.<name> when due. A queue's consumer then only ever
 * holds due jobs, so delayed ones cannot take the ack-pending slots due jobs need.
 */
const DELAYED = 'delayed';
export const delayedQueueSubjects = (queue: string) => `${JOB_SUBJECT_PREFIX}.${DELAYED}.${queue}.>`;
export const toDelayLane = (subject: string) => subject.replace(`${JOB_SUBJECT_PREFIX}.`, `${JOB_SUBJECT_PREFIX}.${DELAYED}.`);
export const fromDelayLane = (subject: string) => subject.replace(`${JOB_SUBJECT_PREFIX}.${DELAYED}.`, `${JOB_SUBJECT_PREFIX}.`);
/** How many times a job has gone to the delay lane: a job that keeps coming back is dead-lettered. */
export const JOB_HOPS_HEADER = 'Orderflow-Job-Hops';

export const jobEnvelopeSchema = z.object({
  job_id: z.uuid(),
  name: z.string().min(1),
  payload: z.unknown(),
  dispatched_at: z.iso.datetime({ offset: true }),
  /** Not before this instant: the worker holds the job back (nak with delay) until then. */
  run_at: z.iso.datetime({ offset: true }),
  correlation_id: z.string().min(1).max(200),
});
export type JobEnvelope = z.infer<typeof jobEnvelopeSchema>;

export const Jobs = {
  fulfillOrder: defineJob({
    name: 'fulfill-order',
    queue: 'fulfillment',
    payload: z.object({ order_id: z.string().min(1).max(64) }),
  }),
  /** From the dashboard's tools: shows a job run now, later, or fail its way to the dead letters. */
  demo: defineJob({
    name: 'demo',
    queue: 'fulfillment',
    payload: z.object({ message: z.string().max(500), fail: z.boolean().default(false) }),
  }),
} as const;

export interface DispatchOptions {
  correlationId: string;
  /** Run no earlier than this many milliseconds from now. */
  delayMs?: number;
}

export function createJob<S extends z.ZodType>(job: JobDefinition<S>, payload: z.input<S>, options: DispatchOptions, now = new Date()): JobEnvelope {
  return {
    job_id: newId(),
    name: job.name,
    payload: job.payload.parse(payload),
    dispatched_at: now.toISOString(),
    run_at: new Date(now.getTime() + Math.max(0, options.delayMs ?? 0)).toISOString(),
    correlation_id: options.correlationId,
  };
}
