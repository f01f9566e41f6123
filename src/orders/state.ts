import type { OrderStatus } from '../events/contracts.js';

/**
 * The order state machine. `created` lasts only until the payment service has been asked;
 * `payment_pending` means it has not answered yet; `shipped` and `payment_declined` are final.
 */
const transitions: Record<OrderStatus, readonly OrderStatus[]> = {
  created: ['payment_pending', 'paid', 'payment_declined'],
  // payment_pending → payment_pending records one more unanswered attempt.
  payment_pending: ['payment_pending', 'paid', 'payment_declined'],
  paid: ['shipped'],
  payment_declined: [],
  shipped: [],
};

export const FINAL_STATUSES: readonly OrderStatus[] = ['shipped', 'payment_declined'];

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return transitions[from].includes(to);
}

/** The states an order may be in for a move to `to` to be legal (for conditional updates). */
export function statusesAllowing(to: OrderStatus): OrderStatus[] {
  return (Object.keys(transitions) as OrderStatus[]).filter((from) => canTransition(from, to));
}

/** The state machine refused a move (also exported from errors.ts, with the other storage outcomes). */
export class IllegalTransitionError extends Error {
  constructor(
    readonly orderId: string,
    readonly from: string,
    readonly to: OrderStatus,
  ) {
    super(`order ${orderId}: cannot move from ${from} to ${to}`);
  }
}
