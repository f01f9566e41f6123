import { createJob, Jobs } from '../events/jobs.js';
import { jobMessage } from '../outbox/outbox.js';
import { InFlightWindow } from './in-flight-window.js';
import type { Order } from './order.js';
import { type PlaceOrderDeps, settlePayment } from './place-order.js';

/**
 * A claim's time is its maker's clock plus `claimMs`, read a moment before the statement runs; a
 * retry timer later than our own claim by more than this is a backoff, not someone's claim.
 */
const CLAIM_SKEW_MS = 1000;
/** This many unanswered in a row: the payment service is away again, stop taking orders. */
const GIVE_UP_AFTER = 8;

export interface ReconcileOptions {
  /** An order in a non-final state this long is re-driven (STUCK_AFTER_MS). */
  stuckAfterMs: number;
  /** How long a claimed payment retry is held, so two reconcilers do not ask twice at once. */
  claimMs: number;
  /**
   * A claimed order is asked about only this long after its claim (default half of it): what is
   * left of the claim must cover the request and settling its answer.
   */
  askWithinMs?: number;
  /** Payments asked in this pass at most (default 100). */
  batchSize?: number;
  /**
   * Take waiting payments whatever their retry timer says (a dependency answers again: catch up
   * now, paced by `window`, not by timers). A claim another reconciler holds is still respected:
   * a timer later than any claim could be is a backoff, not a claim.
   */
  ignoreBackoff?: boolean;
  /** How many payments are asked at once (default: one at a time). Kept from pass to pass, it learns the pace. */
  window?: InFlightWindow;
  /** Asked before each claim: false stops the pass taking more orders (those in flight finish). */
  keepGoing?: () => boolean;
  /** Also re-queue fulfilment for paid orders left unshipped (default true). */
  unshipped?: boolean;
}

export interface ReconcileReport {
  paymentsRetried: number;
  /** Of those, how many the payment service answered (approved or declined). */
  paymentsAnswered: number;
  /** The pass took every order that was waiting (a claim came back short of what it asked for). */
  drained: boolean;
  /** Transactions that claimed the orders: one per batch. */
  claims: number;
  fulfilmentsRequeued: number;
}

/**
 * The database is the source of truth: one pass re-drives every order that should have moved on.
 * - `payment_pending` whose retry time has come, and `created` (written by versions before
 *   2026-12, which stored the order before asking, and left there by a crash): ask again.
 * - `paid` for longer than `stuckAfterMs` without being shipped (a lost job, a NATS server that
 *   lost its store): queue the FulfillOrder job again. A duplicate job is harmless; fulfilment is
 *   idempotent.
 * Orders are claimed (a conditional update) before they are re-driven, so concurrent reconcilers
 * split the work.
 */
export async function reconcileOnce(deps: PlaceOrderDeps, opts: ReconcileOptions): Promise<ReconcileReport> {
  const report: ReconcileReport = { paymentsRetried: 0, paymentsAnswered: 0, drained: false, claims: 0, fulfilmentsRequeued: 0 };
  const keepGoing = opts.keepGoing ?? (() => true);
  await retryPayments(deps, opts, report, keepGoing);
  if ((opts.unshipped ?? true) && keepGoing()) await requeueUnshipped(deps, opts, report);
  return report;
}

/**
 * Payments, as a pipeline: each order is asked about and settled on its own, as many at once as
 * the window allows, so a slow answer holds up one slot, not a batch. Claims run alongside: one
 * transaction takes what the window will want next (what it has free, plus half a window ahead,
 * so slots do not stand idle while the claim commits), and a claimed order that waited so long
 * for a slot that its claim would run out before it is done is left to be claimed again.
 */
async function retryPayments(deps: PlaceOrderDeps, opts: ReconcileOptions, report: ReconcileReport, keepGoing: () => boolean): Promise<void> {
  const window = opts.window ?? new InFlightWindow({ initial: 1, max: 1 });
  const limit = opts.batchSize ?? 100;
  const inFlight = new Set<Promise<void>>();
  const claimedNotStarted: { order: Order; at: number }[] = [];
  let claiming: Promise<void> | undefined;
  let claimed = 0;
  let unansweredInARow = 0;
  let failure: { err: unknown } | undefined;

  const drive = (order: Order) => {
    const started = performance.now();
    const p = settlePayment(deps, order, { correlationId: order.correlationId })
      .then((settled) => {
        const answered = settled.status !== 'payment_pending';
        report.paymentsRetried++;
        if (answered) report.paymentsAnswered++;
        unansweredInARow = answered ? 0 : unansweredInARow + 1;
        window.record(performance.now() - started, answered, inFlight.size);
      })
      .catch((err: unknown) => {
        failure ??= { err };
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  const claim = (n: number) => {
    let at = 0;
    return deps.storage
      .run((tx) => {
        // Read inside the unit, so the claim's time is as close as it can be to when it is written.
        at = performance.now();
        const now = new Date();
        const until = new Date(now.getTime() + opts.claimMs);
        return tx.orders.claimAwaitingPayment({
          now,
          stuckBefore: new Date(now.getTime() - opts.stuckAfterMs),
          until,
          limit: n,
          backingOffAfter: opts.ignoreBackoff ? new Date(until.getTime() + CLAIM_SKEW_MS) : undefined,
        });
      })
      .then((orders) => {
        report.claims++;
        claimed += orders.length;
        if (orders.length < n) report.drained = true;
        for (const order of orders) claimedNotStarted.push({ order, at });
      })
      .catch((err: unknown) => {
        failure ??= { err };
      })
      .finally(() => (claiming = undefined));
  };

  for (;;) {
    // Failing or told to stop: what is claimed and not started is left, to be claimed again once
    // its claim runs out.
    const stop = failure !== undefined || unansweredInARow >= GIVE_UP_AFTER || !keepGoing();
    if (stop) claimedNotStarted.length = 0;
    while (inFlight.size < window.size && claimedNotStarted.length > 0) {
      const next = claimedNotStarted.shift()!;
      // Too much of its claim gone before it even started: it might not be done in time.
      if (performance.now() - next.at < (opts.askWithinMs ?? opts.claimMs / 2)) drive(next.order);
    }
    const wanted = Math.min(window.size + Math.ceil(window.size / 2) - inFlight.size - claimedNotStarted.length, limit - claimed);
    if (!claiming && !stop && !report.drained && wanted > 0 && (inFlight.size === 0 || wanted * 2 >= window.size)) claiming = claim(wanted);
    if (inFlight.size === 0 && !claiming) break;
    await Promise.race(claiming ? [claiming, ...inFlight] : inFlight);
  }
  if (failure) throw failure.err;
}

async function requeueUnshipped(deps: PlaceOrderDeps, opts: ReconcileOptions, report: ReconcileReport): Promise<void> {
  const now = new Date();
  const unshipped = await deps.storage.unshipped({ now, paidBefore: new Date(now.getTime() - opts.stuckAfterMs), limit: opts.batchSize ?? 100 });
  const requeueUntil = new Date(now.getTime() + opts.stuckAfterMs);
  for (const order of unshipped) {
    const messages = await deps.storage.run(async (tx) => {
      if (!(await tx.orders.claim(order.id, 'paid', now, requeueUntil))) return [];
      const messages = [jobMessage(Jobs.fulfillOrder, createJob(Jobs.fulfillOrder, { order_id: order.id }, { correlationId: order.correlationId }))];
      await tx.outbox.add(messages, now);
      return messages;
    });
    if (messages.length === 0) continue;
    deps.log.warn(
      { order_id: order.id, correlation_id: order.correlationId, job_id: messages[0]!.id },
      'reconciler: order paid but not shipped; fulfilment queued again',
    );
    await deps.outbox.publish(messages);
    report.fulfilmentsRequeued++;
  }
}
