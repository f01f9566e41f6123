import { describe, expect, it } from 'vitest';
import { createEvent, MetricEvents, OrderEvents } from '../../src/events/contracts.js';
import { WireTally } from '../../src/orders/invariants.js';

/** The counting rules of the fault suite's wire check, on envelopes built with the real contracts. */
const shipped = (orderId: string) =>
  createEvent(OrderEvents.shipped, { order_id: orderId, reference: 'ORD-AAAAAAAA', shipped_at: new Date().toISOString() }, { correlationId: 'c' });
const metric = (orderId: string, shipmentId: string) =>
  createEvent(
    MetricEvents.orders,
    { event: 'order.shipped', order_id: orderId, amount_cents: 100, lead_time_ms: 5, at: new Date().toISOString() },
    { correlationId: 'c', causationId: shipmentId },
  );

describe('WireTally', () => {
  it('counts one shipment per order however often the same event id is seen', () => {
    const t = new WireTally();
    const a = shipped('a');
    for (let i = 0; i < 3; i++) t.add(a); // redelivered, republished, read back from the stream
    t.add(shipped('b'));
    expect(t.counts()).toEqual({ shippedOnWire: 2, shippedTwice: 0, metricsOnWire: 0, metricsTwice: 0 });
    expect([...t.shipments('a')]).toEqual([a.event_id]);
  });

  it('counts a second orders.shipped under a new event id as shipped twice', () => {
    const t = new WireTally();
    t.add(shipped('a'));
    t.add(shipped('a'));
    t.add(shipped('b'));
    expect(t.counts()).toMatchObject({ shippedOnWire: 2, shippedTwice: 1 });
  });

  it('allows one metrics.orders per shipment: a copy is fine, a second event for the same shipment is not', () => {
    const t = new WireTally();
    const s = shipped('a');
    const m = metric('a', s.event_id);
    t.add(s);
    t.add(m);
    t.add(m);
    expect(t.counts()).toMatchObject({ metricsOnWire: 1, metricsTwice: 0 });
    expect(t.metricsFor('a')).toBe(1);
    t.add(metric('a', s.event_id));
    expect(t.counts()).toMatchObject({ metricsOnWire: 1, metricsTwice: 1 });
    expect(t.metricsFor('a')).toBe(2);
    expect(t.metricsFor('b')).toBe(0);
  });

  it('a metric for each of two shipments is not metrics twice (the double shipment is what is reported)', () => {
    const t = new WireTally();
    const [s1, s2] = [shipped('a'), shipped('a')];
    for (const e of [s1, s2, metric('a', s1.event_id), metric('a', s2.event_id)]) t.add(e);
    expect(t.counts()).toEqual({ shippedOnWire: 1, shippedTwice: 1, metricsOnWire: 1, metricsTwice: 0 });
  });

  it('ignores other subjects', () => {
    const t = new WireTally();
    t.add(createEvent(OrderEvents.paid, { order_id: 'a', reference: 'ORD-AAAAAAAA', amount_cents: 1, transaction_id: 't' }, { correlationId: 'c' }));
    expect(t.counts()).toEqual({ shippedOnWire: 0, shippedTwice: 0, metricsOnWire: 0, metricsTwice: 0 });
  });
});
