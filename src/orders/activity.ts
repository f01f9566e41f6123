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

/**
 * Records an event in nats_activities once per (consumer, event id): a redelivery or a duplicate
 * publish adds no second row. Returns false when the row was already there.
 */
export async function recordActivity(db: Db, consumer: string, subject: string, event: Envelope): Promise<boolean> {
  const d = (event.data ?? {}) as Record<string, unknown>;
  try {
    await db.natsActivity.create({
      data: {
        consumer,
        subject,
        eventId: event.event_id,
        eventType: event.type,
        orderId: typeof d.order_id === 'string' ? d.order_id : null,
        correlationId: event.correlation_id,
        summary: summarize(event),
        payload: JSON.stringify(event),
        occurredAt: new Date(event.occurred_at),
      },
    });
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'P2002') return false;
    throw err;
  }
}
