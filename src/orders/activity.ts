import type { Db } from '../db/client.js';
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

/** SQLite text timestamps in the form the Prisma adapter writes them, so they sort together. */
const sqliteTime = (d: Date) => d.toISOString().replace('Z', '+00:00');

/**
 * Records many events at once (one transaction), each once per (consumer, event id):
 * `INSERT OR IGNORE` against the unique index. Returns, per event, whether its row is new.
 */
export async function recordActivities(db: Db, items: { consumer: string; subject: string; event: Envelope }[]): Promise<boolean[]> {
  const now = sqliteTime(new Date());
  const counts = await db.$transaction(
    items.map(({ consumer, subject, event }) => {
      const d = (event.data ?? {}) as Record<string, unknown>;
      const orderId = typeof d.order_id === 'string' ? d.order_id : null;
      return db.$executeRaw`INSERT OR IGNORE INTO nats_activities
        (consumer, subject, event_id, event_type, order_id, correlation_id, summary, payload, occurred_at, received_at)
        VALUES (${consumer}, ${subject}, ${event.event_id}, ${event.type}, ${orderId}, ${event.correlation_id}, ${summarize(event)}, ${JSON.stringify(event)}, ${sqliteTime(new Date(event.occurred_at))}, ${now})`;
    }),
  );
  return counts.map((n) => n === 1);
}

/** One event: see recordActivities. Returns false when its row was already there. */
export async function recordActivity(db: Db, consumer: string, subject: string, event: Envelope): Promise<boolean> {
  const [fresh] = await recordActivities(db, [{ consumer, subject, event }]);
  return fresh ?? false;
}
