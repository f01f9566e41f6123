import { randomFillSync } from 'node:crypto';
import { z } from 'zod';

/**
 * W3C Trace Context. orderflow's correlation id is the trace id: it arrives in an HTTP
 * `traceparent` (or is made up), and travels in a `traceparent` header on every event, job,
 * request and reply, with a fresh span id per hop.
 */
export const TRACEPARENT = 'traceparent';
const traceparent = z.string().regex(/^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/);
const TRACE_ID = /^[0-9a-f]{32}$/;
const ZERO_TRACE = '0'.repeat(32);

// Ids come from a pool refilled 4 KiB at a time (as Node does for randomUUID): a span id per
// message made randomBytes() one of the web process's top costs.
const pool = Buffer.alloc(4096);
let used = pool.length;
function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  used += bytes;
  return pool.toString('hex', used - bytes, used);
}

export const newTraceId = (): string => randomHex(16);
export const newSpanId = (): string => randomHex(8);

/** The trace id of a valid `traceparent` header, or null. */
export function traceIdFrom(header: unknown): string | null {
  const r = traceparent.safeParse(header);
  if (!r.success) return null;
  const id = /^00-([0-9a-f]{32})-/.exec(r.data)![1]!;
  return id === ZERO_TRACE ? null : id;
}

/** A `traceparent` for the next hop of this trace, when the correlation id is a trace id. */
export function childTraceparent(correlationId: string): string | undefined {
  return TRACE_ID.test(correlationId) ? `00-${correlationId}-${newSpanId()}-01` : undefined;
}
