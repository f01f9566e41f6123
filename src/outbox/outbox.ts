import { correlationHeaderRecord, eventHeaderRecord, type Envelope } from '../events/envelope.js';
import { jobSubject, type JobDefinition, type JobEnvelope } from '../events/jobs.js';

/**
 * An outbox message: written in the same unit of work as the state change that causes it
 * (`tx.outbox.add`), published to JetStream once committed by the relay (relay.ts).
 */
export interface OutboxMessage {
  /** Event id or job id: also the Nats-Msg-Id, so a second publish of it is stored once. */
  id: string;
  subject: string;
  /** The message body, serialized once: the same bytes are stored and published. */
  payload: string;
  headers: Record<string, string>;
}

export const eventMessage = (event: Envelope): OutboxMessage => ({
  id: event.event_id,
  subject: event.type,
  payload: JSON.stringify(event),
  headers: eventHeaderRecord(event),
});

export const jobMessage = (job: JobDefinition, envelope: JobEnvelope): OutboxMessage => ({
  id: envelope.job_id,
  subject: jobSubject(job),
  payload: JSON.stringify(envelope),
  headers: correlationHeaderRecord(envelope.correlation_id),
});
