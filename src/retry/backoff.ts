/**
 * orderflow's one retry-delay rule: the first delay, doubled for each further attempt, capped.
 * Every place that waits before trying again uses it with its own first delay and cap — payment
 * retries, the outbox sweep, consumers' nak delays and consumer lookups, the supervisor's
 * restarts — so "how long until the next try" has one answer to read and to test.
 *
 * A timer is only the pace while a dependency is away: once it answers again, what waits is
 * taken at once, paced by capacity (see workers/reconciler.ts and outbox/relay.ts `wake()`).
 */
export interface Backoff {
  /** The delay after the first failed attempt. */
  firstMs: number;
  /** No delay is longer than this. */
  maxMs: number;
}

/** The delay after `attempt` failed attempts (1, 2, 3 …): firstMs × 2^(attempt−1), at most maxMs. */
export function retryDelay(policy: Backoff, attempt: number): number {
  return Math.min(policy.maxMs, policy.firstMs * 2 ** Math.max(0, attempt - 1));
}
