import type { Activity, Order } from '../orders/order.js';
import { formatCents } from '../orders/money.js';
import { FINAL_STATUSES } from '../orders/state.js';

/** The order as the API (and the live order page) sees it. */
export function orderJson(order: Order, timeline?: Activity[]) {
  return {
    id: order.id,
    reference: order.reference,
    customer_email: order.customerEmail,
    amount: formatCents(order.amountCents),
    amount_cents: order.amountCents,
    currency: order.currency,
    status: order.status,
    final: (FINAL_STATUSES as readonly string[]).includes(order.status),
    payment_response: order.paymentResponse ? (JSON.parse(order.paymentResponse) as unknown) : null,
    payment_attempts: order.paymentAttempts,
    payment_error: order.paymentError,
    correlation_id: order.correlationId,
    created_at: order.createdAt.toISOString(),
    paid_at: order.paidAt?.toISOString() ?? null,
    shipped_at: order.shippedAt?.toISOString() ?? null,
    ...(timeline
      ? {
          timeline: timeline.map((a) => ({
            event_id: a.eventId,
            subject: a.subject,
            summary: a.summary,
            occurred_at: a.occurredAt.toISOString(),
          })),
        }
      : {}),
  };
}
export type OrderJson = ReturnType<typeof orderJson>;
