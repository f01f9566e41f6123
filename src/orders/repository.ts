import { randomUUID } from 'node:crypto';
import type { Db, Order, NatsActivity } from '../db/client.js';
import { fromSqlTime, isSqliteUnique, sqlTime, type Sql, type SqlWriter } from '../db/sql.js';
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

export class OrderNotFoundError extends Error {
  constructor(readonly orderId: string) {
    super(`order ${orderId} not found`);
  }
}

export interface Page<T> {
  items: T[];
  page: number;
  perPage: number;
  total: number;
  pages: number;
}

interface OrderRow {
  id: string;
  reference: string;
  customer_email: string;
  amount_cents: number;
  currency: string;
  status: string;
  payment_response: string | null;
  payment_attempts: number;
  payment_error: string | null;
  next_attempt_at: string | null;
  correlation_id: string;
  created_at: string;
  updated_at: string;
  paid_at: string | null;
  shipped_at: string | null;
}

const orderFromRow = (r: OrderRow): Order => ({
  id: r.id,
  reference: r.reference,
  customerEmail: r.customer_email,
  amountCents: r.amount_cents,
  currency: r.currency,
  status: r.status,
  paymentResponse: r.payment_response,
  paymentAttempts: r.payment_attempts,
  paymentError: r.payment_error,
  nextAttemptAt: fromSqlTime(r.next_attempt_at),
  correlationId: r.correlation_id,
  createdAt: fromSqlTime(r.created_at)!,
  updatedAt: fromSqlTime(r.updated_at)!,
  paidAt: fromSqlTime(r.paid_at),
  shippedAt: fromSqlTime(r.shipped_at),
});

// ---- statements, for use inside `sql.write(tx => …)` (or `sql.read`) -----------------------------

/** Inserts a new order (status `created`); ids and reference are made here. */
export function insertOrder(tx: Sql, input: NewOrder): Order {
  const insert = tx.stmt(
    `INSERT INTO orders (id, reference, customer_email, amount_cents, currency, status, payment_attempts, correlation_id, created_at, updated_at)
     VALUES (?, ?, ?, ?, 'USD', 'created', 0, ?, ?, ?) RETURNING *`,
  );
  // A reference collision (1 in ~10^12) is retried rather than surfaced to the customer.
  for (let attempt = 0; ; attempt++) {
    const now = sqlTime(new Date());
    try {
      return orderFromRow(insert.get(randomUUID(), newOrderReference(), input.customerEmail, input.amountCents, input.correlationId, now, now) as OrderRow);
    } catch (err) {
      if (attempt < 3 && isSqliteUnique(err)) continue;
      throw err;
    }
  }
}

export function findOrder(tx: Sql, id: string): Order | null {
  const row = tx.stmt('SELECT * FROM orders WHERE id = ?').get(id) as OrderRow | undefined;
  return row ? orderFromRow(row) : null;
}

/** Orders matching a WHERE clause (with ORDER BY / LIMIT as needed). */
export function selectOrders(tx: Sql, where: string, ...params: unknown[]): Order[] {
  return (tx.stmt(`SELECT * FROM orders WHERE ${where}`).all(...params) as OrderRow[]).map(orderFromRow);
}

const COLUMNS = { paymentResponse: 'payment_response', paymentError: 'payment_error', paidAt: 'paid_at', shippedAt: 'shipped_at', nextAttemptAt: 'next_attempt_at' } as const;

/**
 * Moves the order to `to` only if its current status allows it: one
 * UPDATE … WHERE id = ? AND status IN (…) RETURNING *, so two workers racing on one order cannot
 * both win. Throws IllegalTransitionError (or OrderNotFoundError) when it may not move.
 */
export function transitionOrder(tx: Sql, id: string, to: OrderStatus, data: TransitionData = {}): Order {
  const { incrementAttempts, ...fields } = data;
  const keys = (Object.keys(COLUMNS) as (keyof typeof COLUMNS)[]).filter((k) => fields[k] !== undefined);
  const allowed = statusesAllowing(to);
  const sets = ['status = ?', 'updated_at = ?', ...keys.map((k) => `${COLUMNS[k]} = ?`), ...(incrementAttempts ? ['payment_attempts = payment_attempts + 1'] : [])];
  const values = keys.map((k) => {
    const v = fields[k];
    return v instanceof Date ? sqlTime(v) : v;
  });
  const row = tx
    .stmt(`UPDATE orders SET ${sets.join(', ')} WHERE id = ? AND status IN (${allowed.map(() => '?').join(', ')}) RETURNING *`)
    .get(to, sqlTime(new Date()), ...values, id, ...allowed) as OrderRow | undefined;
  if (row) return orderFromRow(row);
  const current = tx.stmt('SELECT status FROM orders WHERE id = ?').get(id) as { status: string } | undefined;
  throw current ? new IllegalTransitionError(id, current.status, to) : new OrderNotFoundError(id);
}

/** Order persistence: writes through the SQL writer (see db/sql.ts), page reads through Prisma. */
export class OrderRepository {
  constructor(
    private readonly db: Db,
    private readonly sql: SqlWriter,
  ) {}

  create(input: NewOrder): Promise<Order> {
    return this.sql.write((tx) => insertOrder(tx, input));
  }

  transition(id: string, to: OrderStatus, data: TransitionData = {}): Promise<Order> {
    return this.sql.write((tx) => transitionOrder(tx, id, to, data));
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

  activities(orderId: string): Promise<NatsActivity[]> {
    return this.db.natsActivity.findMany({ where: { orderId }, orderBy: [{ occurredAt: 'asc' }, { id: 'asc' }] });
  }
}
