import { z } from 'zod';
import { newId } from './ids.js';
import { childTraceparent, TRACEPARENT } from './trace.js';

/**
 * Every event on the wire is this envelope around a typed `data` payload.
 * The envelope is what lets a subscriber dedupe (event_id), route (type, version)
 * and trace (correlation_id, causation_id) without knowing the payload.
 */
export const envelopeSchema = z.object({
  event_id: z.uuid(),
  type: z.string().min(1),
  version: z.number().int().positive(),
  occurred_at: z.iso.datetime({ offset: true }),
  correlation_id: z.string().min(1).max(200),
  causation_id: z.string().min(1).max(200).optional(),
  data: z.unknown(),
});

export type Envelope<T = unknown> = Omit<z.infer<typeof envelopeSchema>, 'data'> & { data: T };

export interface EventDefinition<S extends z.ZodType = z.ZodType> {
  /** The NATS subject it is published on; also the event type. */
  readonly subject: string;
  readonly version: number;
  readonly data: S;
  readonly description: string;
}

export function defineEvent<S extends z.ZodType>(def: EventDefinition<S>): EventDefinition<S> {
  return def;
}

export interface Causation {
  correlationId: string;
  /** The event (or request) that caused this one, when there is one. */
  causationId?: string;
}

export function createEvent<S extends z.ZodType>(def: EventDefinition<S>, data: z.input<S>, cause: Causation, now: Date = new Date()): Envelope<z.output<S>> {
  return {
    event_id: newId(),
    type: def.subject,
    version: def.version,
    occurred_at: now.toISOString(),
    correlation_id: cause.correlationId,
    ...(cause.causationId ? { causation_id: cause.causationId } : {}),
    // Parsing on the way out too: a publisher cannot put a payload on the wire that its own
    // subscribers would reject.
    data: def.data.parse(data),
  };
}

/** One line per problem, joined: fits a log field, a NATS header and a dead-letter record. */
export function describeZodError(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}

/** NATS header names orderflow sets on every event, job and request. */
export const Headers = {
  MsgId: 'Nats-Msg-Id',
  EventType: 'Orderflow-Event-Type',
  EventVersion: 'Orderflow-Event-Version',
  CorrelationId: 'Orderflow-Correlation-Id',
} as const;

/** The headers every event carries (as a plain record, so the outbox can store them). */
export function eventHeaderRecord(event: Envelope): Record<string, string> {
  return {
    [Headers.EventType]: event.type,
    [Headers.EventVersion]: String(event.version),
    ...correlationHeaderRecord(event.correlation_id),
  };
}

/** The correlation id, and the W3C traceparent of the next hop when the correlation id is a trace id. */
export function correlationHeaderRecord(correlationId: string): Record<string, string> {
  const tp = childTraceparent(correlationId);
  return { [Headers.CorrelationId]: correlationId, ...(tp ? { [TRACEPARENT]: tp } : {}) };
}
