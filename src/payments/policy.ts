import { randomUUID } from 'node:crypto';
import type { PaymentReply } from '../events/contracts.js';

/** The PoC's rule: approve when 0 < amount < 10,000.00. */
export const APPROVAL_LIMIT_CENTS = 1_000_000;

export function decidePayment(orderId: string, amountCents: number): PaymentReply {
  if (amountCents <= 0)
    return { approved: false, transaction_id: null, order_id: orderId, amount_cents: amountCents, reason: 'amount must be greater than zero' };
  if (amountCents >= APPROVAL_LIMIT_CENTS) {
    return { approved: false, transaction_id: null, order_id: orderId, amount_cents: amountCents, reason: 'amount exceeds the 10,000.00 limit' };
  }
  return { approved: true, transaction_id: `txn_${randomUUID().replace(/-/g, '').slice(0, 16)}`, order_id: orderId, amount_cents: amountCents };
}
