import type { OrderStatus } from '../events/contracts.js';
import { newId } from '../events/ids.js';
import { newOrderReference } from './reference.js';

/** An order as the flows and pages see it (the storage adapters map their rows to this). */
export interface Order {
  id: string;
  /** `ORD-XXXXXXXX`, unique (see reference.ts). */
  reference: string;
  customerEmail: string;
  /** Money is integer minor units (cents): never a float. */
  amountCents: number;
  currency: string;
  status: OrderStatus;
  paymentResponse: string | null;
  paymentAttempts: number;
  paymentError: string | null;
  /** When the reconciler may next re-drive this order (ask for payment again, re-queue fulfilment). */
  nextAttemptAt: Date | null;
  correlationId: string;
  createdAt: Date;
  updatedAt: Date;
  paidAt: Date | null;
  shippedAt: Date | null;
}

/** A new order as the domain builds it: ids, reference and times are ours, not the database's. */
export interface NewOrder {
  id: string;
  reference: string;
  customerEmail: string;
  amountCents: number;
  currency: string;
  correlationId: string;
  createdAt: Date;
}

/** What a transition changes besides the status (undefined: left as it is; null: cleared). */
export interface TransitionData {
  paymentResponse?: string | null;
  paymentError?: string | null;
  paidAt?: Date | null;
  shippedAt?: Date | null;
  nextAttemptAt?: Date | null;
  /** payment_attempts + 1 */
  incrementAttempts?: boolean;
}

/** One event as a subscriber recorded it (the order page's timeline, `orderflow check`). */
export interface Activity {
  id: number;
  /** Which subscriber recorded it ("activity" durable consumer, or "activity-live"). */
  consumer: string;
  subject: string;
  eventId: string;
  eventType: string;
  orderId: string | null;
  correlationId: string | null;
  summary: string;
  payload: string;
  occurredAt: Date;
  receivedAt: Date;
}

export type NewActivity = Omit<Activity, 'id'>;

export interface Page<T> {
  items: T[];
  page: number;
  perPage: number;
  total: number;
  pages: number;
}

/** A new order's identity and times, made by the domain (the store only keeps them). */
export function newOrder(input: { customerEmail: string; amountCents: number; correlationId: string; currency?: string }, at = new Date()): NewOrder {
  return {
    id: newId(),
    reference: newOrderReference(),
    customerEmail: input.customerEmail,
    amountCents: input.amountCents,
    currency: input.currency ?? 'USD',
    correlationId: input.correlationId,
    createdAt: at,
  };
}
