import { sqlTime, type Sql } from '../db/sql.js';
import { correlationHeaderRecord, eventHeaderRecord, type Envelope } from '../events/envelope.js';
import { jobSubject, type JobDefinition, type JobEnvelope } from '../events/jobs.js';

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

/**
 * Writes messages into the outbox inside the caller's transaction (`sql.write(tx => …)`): they
 * commit with its state change or not at all. The caller hands them to the relay once committed.
 */
export function insertOutbox(tx: Sql, messages: OutboxMessage[]): void {
  const insert = tx.stmt('INSERT INTO outbox (id, subject, payload, headers, created_at, attempts) VALUES (?, ?, ?, ?, ?, 0)');
  const now = sqlTime(new Date());
  for (const m of messages) insert.run(m.id, m.subject, m.payload, JSON.stringify(m.headers), now);
}

/** Rows a crash or an outage left unpublished, oldest first. */
export function unpublishedOutbox(tx: Sql, olderThan: Date, limit: number): OutboxMessage[] {
  const rows = tx
    .stmt('SELECT id, subject, payload, headers FROM outbox WHERE published_at IS NULL AND created_at < ? ORDER BY created_at LIMIT ?')
    .all(sqlTime(olderThan), limit) as { id: string; subject: string; payload: string; headers: string }[];
  return rows.map((r) => ({ ...r, headers: JSON.parse(r.headers) as Record<string, string> }));
}

export function markOutboxPublished(tx: Sql, ids: string[]): void {
  const mark = tx.stmt('UPDATE outbox SET published_at = ? WHERE id = ?');
  const now = sqlTime(new Date());
  for (const id of ids) mark.run(now, id);
}

export function recordOutboxFailure(tx: Sql, id: string, error: string): void {
  tx.stmt('UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?').run(error.slice(0, 500), id);
}
