import { randomUUID } from 'node:crypto';
import type { Db, Order, NatsActivity } from '../db/client.js';
import type { Tx } from '../outbox/outbox.js';
import type { OrderStatus } from '../events/contracts.js';
import { newOrderReference } from './reference.js';
import { IllegalTransitionError, statusesAllowing } from './state.js';

export type { Order, NatsActivity };

export interface NewOrder {
  customerEmail: string;
  amountCents: number;
  correlationId: string;
}

export type TransitionData = Partial<Pick<Order, 'paymentResponse' | 'paymentError' | 'paidAt' | 'shippedAt' | 'nextAttemptAt'>> & { incrementAttempts?: boolean };

/** Prisma's "no record matched" (an update whose WHERE found nothing). */
export const isNoRecord = (err: unknown) => (err as { code?: string }).code === 'P2025';
export const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === 'P2002';

/** A new order's row: ids and reference made here, so the insert can go in a batch transaction. */
export function newOrderData(input: NewOrder) {
  return { id: randomUUID(), reference: newOrderReference(), customerEmail: input.customerEmail, amountCents: input.amountCents, status: 'created', currency: 'USD', correlationId: input.correlationId };
}

export interface Page<T> {
  items: T[];
  page: number;
  perPage: number;
  total: number;
  pages: number;
}

/** Order persistence. Every status change is a conditional update guarded by the state machine. */
export class OrderRepository {
  constructor(private readonly db: Db) {}

  async create(input: NewOrder, tx: Tx = this.db): Promise<Order> {
    // A reference collision (1 in ~10^12) is retried rather than surfaced to the customer.
    for (let attempt = 0; ; attempt++) {
      try {
        return await tx.order.create({ data: newOrderData(input) });
      } catch (err) {
        if (attempt < 3 && (err as { code?: string }).code === 'P2002') continue;
        throw err;
      }
    }
  }

  /**
   * The statement that moves an order to `to` if its status allows it: one
   * UPDATE … WHERE id = ? AND status IN (…) RETURNING *, for use inside a batch transaction.
   * It fails with P2025 when the order is missing or not in an allowed state (see whyNot).
   */
  transitionQuery(id: string, to: OrderStatus, data: TransitionData = {}, tx: Tx = this.db) {
    const { incrementAttempts, ...fields } = data;
    return tx.order.update({
      where: { id, status: { in: statusesAllowing(to) } },
      data: { ...fields, status: to, ...(incrementAttempts ? { paymentAttempts: { increment: 1 } } : {}) },
    });
  }

  /** After a transitionQuery failed with P2025: the error that says why. */
  async whyNot(id: string, to: OrderStatus, tx: Tx = this.db): Promise<Error> {
    const order = await tx.order.findUnique({ where: { id }, select: { status: true } });
    return order ? new IllegalTransitionError(id, order.status, to) : new Error(`order ${id} not found`);
  }

  find(id: string): Promise<Order | null> {
    return this.db.order.findUnique({ where: { id } });
  }

  async list(page: number, perPage: number): Promise<Page<Order>> {
    const [items, total] = await Promise.all([
      this.db.order.findMany({ orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], skip: (page - 1) * perPage, take: perPage }),
      this.db.order.count(),
    ]);
    return { items, page, perPage, total, pages: Math.max(1, Math.ceil(total / perPage)) };
  }

  /**
   * Moves the order to `to` only if its current status allows it (one SQL UPDATE … WHERE status IN …),
   * so two workers racing on the same order cannot both win.
   */
  async transition(id: string, to: OrderStatus, data: TransitionData = {}, tx: Tx = this.db): Promise<Order> {
    try {
      return await this.transitionQuery(id, to, data, tx);
    } catch (err) {
      if (!isNoRecord(err)) throw err;
      throw await this.whyNot(id, to, tx);
    }
  }

  activities(orderId: string): Promise<NatsActivity[]> {
    return this.db.natsActivity.findMany({ where: { orderId }, orderBy: [{ occurredAt: 'asc' }, { id: 'asc' }] });
  }
}
