import type { Db } from '../db/client.js';
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
  await tx.outboxMessage.createMany({
    data: messages.map((m) => ({ id: m.id, subject: m.subject, payload: JSON.stringify(m.payload), headers: JSON.stringify(m.headers) })),
  });
  return messages;
}

/**
 * Runs `effect` at most once per (consumer, message id): the inbox row and the effect commit in one
 * transaction, so a redelivered or duplicated message finds the row and has no second effect.
 */
export async function processOnce<T>(db: Db, consumer: string, messageId: string, effect: (tx: Tx) => Promise<T>): Promise<{ fresh: true; result: T } | { fresh: false }> {
  try {
    return await db.$transaction(async (tx) => {
      await tx.processedMessage.create({ data: { consumer, messageId } });
      return { fresh: true as const, result: await effect(tx) };
    });
  } catch (err) {
    if ((err as { code?: string }).code === 'P2002') return { fresh: false };
    throw err;
  }
}
