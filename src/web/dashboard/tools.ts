import { z } from 'zod';
import { subjectMatches } from '../../nats/subjects.js';
import { streamConfigs } from '../../nats/topology.js';

/**
 * The dashboard's tools must not hurt production: publish and request go to any subject except
 * orderflow's own (what its streams capture: orders.>, jobs.>, dlq.>; and its heartbeats), unless
 * the operator says `"inject": true` on purpose. The demo default is demo.hello.
 */
export const MAX_JOB_DELAY_MS = 24 * 3600 * 1000;

/** Form booleans: true/false, "true"/"false", "on"/"off", "1"/"0", "yes"/"no" ("false" is false). */
export const formBoolean = z.union([z.boolean(), z.stringbool({ error: 'true or false' })]);

const subject = z
  .string()
  .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'a subject like demo.hello (no wildcards)')
  .max(200);
const payloadText = z.string().max(16 * 1024);

export const publishBody = z.object({ subject, payload: payloadText.default(''), inject: formBoolean.default(false) });
export const requestBody = z.object({
  subject,
  payload: payloadText.default(''),
  timeout_ms: z.coerce.number().int().min(10).max(10_000).default(2000),
  inject: formBoolean.default(false),
});
export const jobBody = z
  .object({
    message: z.string().max(500).default('hello from the dashboard'),
    delay_ms: z.coerce.number().int().min(0).max(MAX_JOB_DELAY_MS, 'at most 86400000 (24 h)').optional(),
    run_at: z.iso.datetime({ offset: true, error: 'an ISO 8601 time such as 2030-01-01T12:00:00Z' }).optional(),
    fail: formBoolean.default(false),
  })
  .superRefine((b, ctx) => {
    if (b.delay_ms !== undefined && b.run_at !== undefined) ctx.addIssue({ code: 'custom', path: ['run_at'], message: 'give delay_ms or run_at, not both' });
    if (b.run_at !== undefined && Date.parse(b.run_at) - Date.now() > MAX_JOB_DELAY_MS)
      ctx.addIssue({ code: 'custom', path: ['run_at'], message: 'at most 24 h from now' });
  })
  .transform(({ run_at, delay_ms, ...rest }) => ({ ...rest, delayMs: run_at !== undefined ? Math.max(0, Date.parse(run_at) - Date.now()) : (delay_ms ?? 0) }));
export const dlqPageQuery = z.object({ after: z.coerce.number().int().min(0).default(0), limit: z.coerce.number().int().min(1).max(100).default(50) });
export const seqParam = z.object({ seq: z.coerce.number().int().positive() });

/** The subject filters orderflow consumes: every stream's, and the workers' heartbeats. */
const OWN_FILTERS = [...streamConfigs({ ordersMaxAgeDays: 1 }).flatMap((c) => c.subjects ?? []), 'orderflow.>'];

/** The filter that makes `subject` one of orderflow's own, or undefined. */
export const ownFilter = (subject: string) => OWN_FILTERS.find((f) => subjectMatches(f, subject));
