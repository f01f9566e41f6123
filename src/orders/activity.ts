import { sqlTime, type SqlWriter } from '../db/sql.js';
import { formatCents } from './money.js';
import type { Envelope } from '../events/contracts.js';

/** One human line per event, for the console and the activity table. */
export function summarize(event: Envelope): string {
  const d = (event.data ?? {}) as Record<string, unknown>;
  const ref = typeof d.reference === 'string' ? d.reference : (d.order_id as string | undefined) ?? '?';
  switch (event.type) {
    case 'orders.created':
      return `${ref} created for ${String(d.customer_email)}: ${formatCents(Number(d.amount_cents))} ${String(d.currency ?? '')}`.trim();
    case 'orders.paid':
      return `${ref} paid (${String(d.transaction_id)})`;
    case 'orders.declined':
      return `${ref} payment declined: ${String(d.reason)}`;
    case 'orders.shipped':
      return `${ref} shipped`;
    case 'metrics.orders':
      return `${ref}: ${String(d.event)} after ${String(d.lead_time_ms)} ms (${formatCents(Number(d.amount_cents))})`;
    default:
      return `${event.type} ${ref}`;
  }
}

/**
 * Records an event once per (consumer, event id): `INSERT OR IGNORE` against the unique index.
 * Returns whether its row is new. `within`: see SqlWriter.write.
 */
/** Whether `consumer` has recorded this event already (what recordActivity would skip). */
export function isActivityRecorded(sql: SqlWriter, consumer: string, eventId: string): boolean {
  return sql.read((tx) => tx.stmt('SELECT 1 FROM nats_activities WHERE consumer = ? AND event_id = ?').get(consumer, eventId)) !== undefined;
}

export function recordActivity(sql: SqlWriter, consumer: string, subject: string, event: Envelope, opts: { within?: number } = {}): Promise<boolean> {
  const d = (event.data ?? {}) as Record<string, unknown>;
  const orderId = typeof d.order_id === 'string' ? d.order_id : null;
  const values = [consumer, subject, event.event_id, event.type, orderId, event.correlation_id, summarize(event), JSON.stringify(event), sqlTime(new Date(event.occurred_at))];
  return sql.write(
    (tx) =>
      tx
        .stmt(
          `INSERT OR IGNORE INTO nats_activities
           (consumer, subject, event_id, event_type, order_id, correlation_id, summary, payload, occurred_at, received_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(...values, sqlTime(new Date())).changes === 1,
    opts,
  );
}
