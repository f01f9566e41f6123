import { MetricEvents, OrderEvents, type Envelope } from '../events/contracts.js';
import type { StorageReads } from './ports.js';
import { FINAL_STATUSES } from './state.js';

/**
 * The promises orderflow makes, counted from the database: every accepted order reaches a final
 * state, and each order event is received once. What was shipped is counted from what the
 * activity consumer received from the ORDERS stream, not from the outbox: an `orders.shipped`
 * outbox row is written in the same transaction as the guarded paid → shipped move, so counting
 * those rows would only restate the state machine. `WireTally` counts from the wire itself.
 */
export interface InvariantReport {
  accepted: number;
  final: number;
  byStatus: Partial<Record<string, number>>;
  /** Orders the activity consumer received `orders.shipped` for under more than one event id. */
  shippedTwice: number;
  /**
   * (consumer, order, subject) recorded under more than one event id: one order transition
   * published twice. The unique (consumer, event_id) index absorbs the same event delivered again,
   * so that is not counted; it cannot absorb a second event for the same transition.
   */
  duplicateActivity: number;
  unpublishedOutbox: number;
}

export async function checkInvariants(reads: Pick<StorageReads, 'invariantCounts'>): Promise<InvariantReport> {
  const c = await reads.invariantCounts();
  const final = FINAL_STATUSES.reduce((n, s) => n + (c.byStatus[s] ?? 0), 0);
  return { accepted: c.total, final, byStatus: c.byStatus, shippedTwice: c.shippedTwice, duplicateActivity: c.duplicateActivity, unpublishedOutbox: c.unpublishedOutbox };
}

/** What was counted on the wire, per order. */
export interface WireCounts {
  /** Orders with at least one `orders.shipped` seen. */
  shippedOnWire: number;
  /**
   * Orders with `orders.shipped` under more than one event id: a double shipment. The same event
   * id seen again is a redelivery or a republished copy, and is not counted.
   */
  shippedTwice: number;
  /** Orders with at least one `metrics.orders` seen. */
  metricsOnWire: number;
  /**
   * Orders with more than one `metrics.orders` (distinct event ids) for one shipment (its causation
   * id, the `orders.shipped` event id). At most one each: a metric may be lost (core NATS,
   * published after the commit), never doubled.
   */
  metricsTwice: number;
}

/**
 * Counts `orders.shipped` and `metrics.orders` per order from envelopes as they were seen on NATS
 * (a core subscription, a read of the stream), independently of the database. Feed it every
 * parsed event; other subjects are ignored.
 */
export class WireTally {
  private readonly shipped = new Map<string, Set<string>>();
  /** order id → shipment (causation id) → metric event ids */
  private readonly metrics = new Map<string, Map<string, Set<string>>>();

  add(event: Envelope): void {
    const orderId = (event.data as { order_id?: unknown }).order_id;
    if (typeof orderId !== 'string') return;
    if (event.type === OrderEvents.shipped.subject) {
      getOr(this.shipped, orderId, () => new Set()).add(event.event_id);
    } else if (event.type === MetricEvents.orders.subject) {
      const byShipment = getOr(this.metrics, orderId, () => new Map<string, Set<string>>());
      getOr(byShipment, event.causation_id ?? '', () => new Set()).add(event.event_id);
    }
  }

  /** Event ids of the `orders.shipped` seen for one order. */
  shipments(orderId: string): ReadonlySet<string> {
    return this.shipped.get(orderId) ?? new Set();
  }

  /** How many distinct `metrics.orders` were seen for one order. */
  metricsFor(orderId: string): number {
    let n = 0;
    for (const ids of this.metrics.get(orderId)?.values() ?? []) n += ids.size;
    return n;
  }

  shippedOrders(): ReadonlySet<string> {
    return new Set(this.shipped.keys());
  }

  counts(): WireCounts {
    let shippedTwice = 0;
    for (const ids of this.shipped.values()) if (ids.size > 1) shippedTwice++;
    let metricsTwice = 0;
    for (const byShipment of this.metrics.values()) if ([...byShipment.values()].some((ids) => ids.size > 1)) metricsTwice++;
    return { shippedOnWire: this.shipped.size, shippedTwice, metricsOnWire: this.metrics.size, metricsTwice };
  }
}

function getOr<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) map.set(key, (v = make()));
  return v;
}
