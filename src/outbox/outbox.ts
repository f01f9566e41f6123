import type { Prisma } from '../db/generated/client.js';
import { correlationHeaderRecord, eventHeaderRecord, type Envelope } from '../events/envelope.js';
import { jobSubject, type JobDefinition, type JobEnvelope } from '../events/jobs.js';

/** A Prisma client inside `db.$transaction(async (tx) => …)`. */
export type Tx = Prisma.TransactionClient;

export interface OutboxMessage {
  /** Event id or job id: also the Nats-Msg-Id, so a second publish of it is stored once. */
  id: string;
  subject: string;
  payload: unknown;
  headers: Record<string, string>;
}

export const eventMessage = (event: Envelope): OutboxMessage => ({
  id: event.event_id,
  subject: event.type,
  payload: event,
  headers: eventHeaderRecord(event),
});

export const jobMessage = (job: JobDefinition, envelope: JobEnvelope): OutboxMessage => ({
  id: envelope.job_id,
  subject: jobSubject(job),
  payload: envelope,
  headers: correlationHeaderRecord(envelope.correlation_id),
});

/**
 * Writes messages into the outbox inside the caller's transaction: they commit with its state
 * change or not at all. Returns them, for the caller to hand to the relay once committed.
 */
export async function appendOutbox(tx: Tx, messages: OutboxMessage[]): Promise<OutboxMessage[]> {
  if (messages.length === 0) return [];
  await outboxInsert(tx, messages);
  return messages;
}

/** The outbox INSERT as a statement, for a batch transaction (`db.$transaction([stateChange, outboxInsert(db, msgs)])`). */
export function outboxInsert(tx: Tx, messages: OutboxMessage[]) {
  return tx.outboxMessage.createMany({
    data: messages.map((m) => ({ id: m.id, subject: m.subject, payload: JSON.stringify(m.payload), headers: JSON.stringify(m.headers) })),
  });
}
