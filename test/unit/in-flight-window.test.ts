import { describe, expect, it } from 'vitest';
import { InFlightWindow } from '../../src/orders/in-flight-window.js';

/**
 * A model of what the reconciler drives: a pipeline that takes `capacity` orders per second, each
 * `baseMs` long when nothing queues. With `n` in flight, an order takes max(baseMs, n / capacity)
 * (beyond the knee, capacity × baseMs, the extra ones only queue), give or take `noise`.
 */
function drive(w: InFlightWindow, capacity: number, baseMs: number, answers: number, noise = 0): number[] {
  const sizes: number[] = [];
  let seed = 1;
  const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
  for (let i = 0; i < answers; i++) {
    const n = w.size;
    w.record(Math.max(baseMs, (n / capacity) * 1000) * (1 - noise / 2 + noise * random()), true, n);
    sizes.push(w.size);
  }
  return sizes;
}

describe('the in-flight window follows capacity', () => {
  it('grows while answers come back as fast as with nothing queued, up to its maximum', () => {
    // Knee at 250 in flight: every window below it is answered in 50 ms.
    const sizes = drive(new InFlightWindow({ max: 128 }), 5000, 50, 1000);
    expect(sizes[0]).toBe(4);
    expect(sizes.at(-1)).toBe(128);
  });

  it('settles just past the knee when more in flight only queues: the capacity is used, the queue stays short', () => {
    for (const [capacity, baseMs] of [
      [500, 20],
      [100, 100],
      [2000, 5],
    ] as const) {
      const knee = (capacity * baseMs) / 1000; // 10 in flight
      for (const noise of [0, 0.4]) {
        const settled = drive(new InFlightWindow(), capacity, baseMs, 3000, noise).slice(-1000);
        // At least the knee (throughput = capacity), and only a few more (each one extra waits).
        expect(Math.min(...settled), `capacity ${capacity}/s, noise ${noise}`).toBeGreaterThanOrEqual(knee);
        expect(Math.max(...settled), `capacity ${capacity}/s, noise ${noise}`).toBeLessThanOrEqual(knee * 2.5);
      }
    }
  });

  it('halves when an order is not answered, never below its minimum', () => {
    const w = new InFlightWindow({ initial: 40, min: 2 });
    w.record(1000, false, 40);
    expect(w.size).toBe(20);
    for (let i = 0; i < 10; i++) w.record(1000, false, 1);
    expect(w.size).toBe(2);
  });

  it('does not grow on answers from a window it does not fill', () => {
    const w = new InFlightWindow({ initial: 32 });
    for (let i = 0; i < 500; i++) w.record(10, true, 3);
    expect(w.size).toBe(32);
  });

  it('relearns the latency with nothing queued: a system that became slower is not taken for a queue', () => {
    const w = new InFlightWindow();
    drive(w, 500, 2, 2000); // fast: 2 ms per order up to a knee at 1 in flight
    const before = w.size;
    w.relearn();
    // Now 40 ms per order and a knee at 20: without relearning, 40 ms would read as a long queue.
    const settled = drive(w, 500, 40, 3000).slice(-500);
    expect(Math.min(...settled)).toBeGreaterThanOrEqual(20);
    expect(before).toBeLessThan(20);
  });
});
