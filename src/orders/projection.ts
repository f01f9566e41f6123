import type { Envelope, OrderStatus } from '../events/contracts.js';

/** The order read model as the ORDERS stream alone tells it. */
export interface ProjectedOrder {
  id: string;
  reference?: string;
  customerEmail?: string;
  amountCents?: number;
  status: OrderStatus;
  paidAt?: string;
  shippedAt?: string;
  events: number;
}

/** Folds one event into the projection (events of unknown orders start a partial entry). */
export function applyEvent(orders: Map<string, ProjectedOrder>, e: Envelope): void {
  const d = e.data as Record<string, unknown>;
  const id = d.order_id as string | undefined;
  if (!id) return;
  const o = orders.get(id) ?? { id, status: 'created' as OrderStatus, events: 0 };
  o.events++;
  if (typeof d.reference === 'string') o.reference = d.reference;
  if (typeof d.amount_cents === 'number') o.amountCents = d.amount_cents;
  switch (e.type) {
    case 'orders.created':
      o.customerEmail = d.customer_email as string;
      break;
    case 'orders.paid':
      if (o.status !== 'shipped') o.status = 'paid';
      o.paidAt = e.occurred_at;
      break;
    case 'orders.declined':
      o.status = 'payment_declined';
      break;
    case 'orders.shipped':
      o.status = 'shipped';
      o.shippedAt = d.shipped_at as string;
      break;
  }
  orders.set(id, o);
}

export interface ProjectionDiff {
  inStream: number;
  inDatabase: number;
  matching: number;
  /** In the database, never seen in the stream (e.g. events lost with a wiped store, or aged out). */
  missingFromStream: string[];
  /** In the stream, not in the database. */
  missingFromDatabase: string[];
  /** Both know the order, but disagree on its status. `payment_pending` has no event, so it matches `created`. */
  statusMismatch: { id: string; stream: OrderStatus; database: string }[];
}

export function diffProjection(projected: Map<string, ProjectedOrder>, db: { id: string; status: string }[]): ProjectionDiff {
  const inDb = new Map(db.map((o) => [o.id, o.status]));
  const diff: ProjectionDiff = {
    inStream: projected.size,
    inDatabase: db.length,
    matching: 0,
    missingFromStream: [],
    missingFromDatabase: [],
    statusMismatch: [],
  };
  for (const [id, status] of inDb) {
    const p = projected.get(id);
    if (!p) diff.missingFromStream.push(id);
    else if (p.status === status || (p.status === 'created' && status === 'payment_pending')) diff.matching++;
    else diff.statusMismatch.push({ id, stream: p.status, database: status });
  }
  for (const id of projected.keys()) if (!inDb.has(id)) diff.missingFromDatabase.push(id);
  return diff;
}
