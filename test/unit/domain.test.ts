import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/env.js';
import { createEvent, OrderEvents, parseEvent } from '../../src/events/contracts.js';
import { formatCents, parseAmountToCents } from '../../src/orders/money.js';
import { newOrderReference, ORDER_REFERENCE } from '../../src/orders/reference.js';
import { canTransition, statusesAllowing } from '../../src/orders/state.js';
import { decidePayment } from '../../src/payments/policy.js';

describe('money', () => {
  it('converts decimal text to cents exactly', () => {
    expect(parseAmountToCents('12.3')).toBe(1230);
    expect(parseAmountToCents('0.1')).toBe(10);
    expect(parseAmountToCents(0.29)).toBe(29); // 0.29 * 100 would be 28.999999999999996
    expect(parseAmountToCents('9999.99')).toBe(999_999);
    for (const bad of ['1e3', '-5', '12.345', '', 'abc', '1,50', NaN, Infinity]) expect(parseAmountToCents(bad as string)).toBeNull();
  });
  it('formats cents', () => {
    expect(formatCents(1230)).toBe('12.30');
    expect(formatCents(5)).toBe('0.05');
  });
});

describe('order state machine', () => {
  it('allows created → paid → shipped and refuses shipping twice or shipping unpaid', () => {
    expect(canTransition('created', 'paid')).toBe(true);
    expect(canTransition('payment_pending', 'paid')).toBe(true);
    expect(canTransition('paid', 'shipped')).toBe(true);
    expect(canTransition('shipped', 'shipped')).toBe(false);
    expect(canTransition('created', 'shipped')).toBe(false);
    expect(canTransition('payment_declined', 'paid')).toBe(false);
    expect(statusesAllowing('shipped')).toEqual(['paid']);
  });
});

describe('payment policy', () => {
  it('approves 0 < amount < 10,000.00', () => {
    expect(decidePayment('o', 1).approved).toBe(true);
    expect(decidePayment('o', 999_999).approved).toBe(true);
    expect(decidePayment('o', 1_000_000)).toMatchObject({ approved: false, transaction_id: null });
    expect(decidePayment('o', 0).approved).toBe(false);
  });
});

describe('order reference', () => {
  it('looks like ORD- and 8 unambiguous characters', () => {
    for (let i = 0; i < 100; i++) expect(newOrderReference()).toMatch(ORDER_REFERENCE);
  });
});

describe('event contracts', () => {
  const e = createEvent(
    OrderEvents.paid,
    { order_id: 'o', reference: 'ORD-1', amount_cents: 1, transaction_id: 't' },
    { correlationId: 'c', causationId: 'x' },
  );
  const bytes = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
  it('round-trips an envelope', () => {
    const p = parseEvent('orders.paid', bytes(e));
    expect(p.ok && p.event).toEqual(e);
  });
  it('refuses garbage, a wrong subject, a wrong version and a bad payload with a reason', () => {
    expect(parseEvent('orders.paid', bytes('{'))).toEqual({ ok: false, error: 'payload is not JSON' });
    expect(parseEvent('orders.shipped', bytes(e))).toMatchObject({ ok: false, error: expect.stringContaining('published on') });
    expect(parseEvent('orders.paid', bytes({ ...e, version: 2 }))).toMatchObject({ ok: false, error: expect.stringContaining('version') });
    expect(parseEvent('orders.paid', bytes({ ...e, data: { order_id: 1 } }))).toMatchObject({
      ok: false,
      error: expect.stringContaining('bad orders.paid data'),
    });
    expect(parseEvent('orders.unknown', bytes(e))).toMatchObject({ ok: false });
  });
  it('refuses to create an event whose payload breaks its own contract', () => {
    expect(() => createEvent(OrderEvents.paid, { order_id: 'o' } as never, { correlationId: 'c' })).toThrow();
  });
});

describe('config', () => {
  it('has defaults, and the analytics URL defaults to NATS_URL', () => {
    const c = parseConfig({ NATS_URL: 'nats://10.0.0.1:4333' });
    expect(c).toMatchObject({
      PORT: 3000,
      HOST: '127.0.0.1',
      NATS_ANALYTICS_URL: 'nats://10.0.0.1:4333',
      PAYMENT_TIMEOUT_MS: 5000,
      DATABASE_URL: 'file:./data/orderflow.db',
    });
  });
  it('names the variable that is wrong', () => {
    expect(() => parseConfig({ PORT: 'abc' })).toThrow(/PORT/);
    expect(() => parseConfig({ NATS_URL: 'http://x' })).toThrow(/NATS_URL/);
    expect(() => parseConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
  });
  it('treats an empty value as unset', () => {
    expect(parseConfig({ PORT: '' }).PORT).toBe(3000);
  });
});
