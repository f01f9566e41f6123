/**
 * How many orders the reconciler drives at once while it catches up: sized by how fast answers
 * come back, not by a constant. An order that takes no longer than one did with nothing queued
 * says there is room: the window grows. One that takes longer says a queue is building somewhere
 * (the payment service, the database, JetStream), and the window is kept where that queue stays
 * a few orders long: the pace is what the slowest stage can take, and live orders are not stuck
 * behind a wall of retries. An order that is not answered (a timeout, no responders) halves it.
 *
 * This is TCP Vegas applied to concurrency, as Netflix's concurrency-limits library does it
 * (VegasLimit): with `limit` in flight, latency `rtt` and the latency with nothing queued
 * `base`, about `limit × (1 − base / rtt)` of them are waiting in a queue; fewer than α: grow,
 * more than β: shrink, once per round trip. Latencies are averaged over about twenty orders, and
 * `base` is the lowest such average seen since `relearn()`.
 */
export interface InFlightWindowOptions {
  initial?: number;
  min?: number;
  max?: number;
}

export class InFlightWindow {
  private limit: number;
  private readonly min: number;
  private readonly max: number;
  /** Average latency over about the last 20 answers, and the lowest that average has been (ms). */
  private recentMs = 0;
  private baseMs = 0;
  private samples = 0;
  private sinceChange = 0;

  constructor(opts: InFlightWindowOptions = {}) {
    this.min = opts.min ?? 1;
    this.max = opts.max ?? 128;
    this.limit = Math.min(this.max, Math.max(this.min, opts.initial ?? 4));
  }

  /**
   * Forget the latency learned so far (keeping the window): the system may have become slower or
   * faster since (a catch-up starts after an outage), and `base` only ever goes down.
   */
  relearn(): void {
    this.samples = this.sinceChange = 0;
    this.baseMs = 0;
  }

  /** Orders that may be in flight now. */
  get size(): number {
    return Math.floor(this.limit);
  }

  /** One order finished: how long it took, whether it was answered, and how many were in flight with it. */
  record(ms: number, answered: boolean, inFlight: number): void {
    if (!answered) {
      this.limit = Math.max(this.min, this.limit / 2);
      return;
    }
    this.samples++;
    this.recentMs = this.samples === 1 ? ms : this.recentMs + (ms - this.recentMs) * 0.05;
    // The first few say little about the queue: wait for the average to settle.
    if (this.samples < 20) return;
    this.baseMs = this.baseMs === 0 ? this.recentMs : Math.min(this.recentMs, this.baseMs);
    // Once per window's worth of answers (about once per round trip), as Vegas does, so a change
    // is seen in the latencies before the next one is made.
    if (++this.sinceChange < this.limit) return;
    this.sinceChange = 0;
    // A window only half used says nothing about whether a larger one would be faster.
    if (inFlight < this.limit / 2) return;
    const queued = this.limit * (1 - this.baseMs / this.recentMs);
    const step = Math.max(1, Math.log10(this.limit));
    if (queued < step) this.limit += 6 * step;
    else if (queued < 3 * step) this.limit += step;
    else if (queued > 6 * step) this.limit -= step;
    this.limit = Math.min(this.max, Math.max(this.min, this.limit));
  }
}
