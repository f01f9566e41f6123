import { sqlTime, type Sql } from '../db/sql.js';
import { createJob, Jobs } from '../events/jobs.js';
import { insertOutbox, jobMessage } from '../outbox/outbox.js';
import { settlePayment, type PlaceOrderDeps } from './place-order.js';
import { selectOrders } from './repository.js';

export interface ReconcileOptions {
  /** An order in a non-final state this long is re-driven (STUCK_AFTER_MS). */
  stuckAfterMs: number;
  /** How long a claimed payment retry is held, so two reconcilers do not ask twice at once. */
  claimMs: number;
  batchSize?: number;
  /**
   * Take waiting payments whatever their retry timer says (a dependency answers again: catch up
   * now, paced by `concurrency`, not by timers). A claim another reconciler holds is still
   * respected: a timer later than `claimMs` from now is a backoff, not a claim.
   */
  ignoreBackoff?: boolean;
  /** Payments asked at once (default 1). */
  concurrency?: number;
}

export interface ReconcileReport {
  paymentsRetried: number;
  /** Of those, how many the payment service answered (approved or declined). */
  paymentsAnswered: number;
  /** Orders waiting for payment that this pass selected (a full batch means more may wait). */
  paymentsSelected: number;
  fulfilmentsRequeued: number;
}

const DUE = '(next_attempt_at IS NULL OR next_attempt_at <= ?)';
/** DUE, or waiting on a retry timer rather than on another reconciler's claim (later than any claim). */
const DUE_OR_BACKING_OFF = '(next_attempt_at IS NULL OR next_attempt_at <= ? OR next_attempt_at > ?)';

/**
 * The database is the source of truth: one pass re-drives every order that should have moved on.
 * - `payment_pending` whose retry time has come, and `created` left behind by a crash between the
 *   insert and the payment request: ask the payment service again.
 * - `paid` for longer than `stuckAfterMs` without being shipped (a lost job, a NATS server that
 *   lost its store): queue the FulfillOrder job again. A duplicate job is harmless; fulfilment is
 *   idempotent.
 * Each order is claimed with a conditional update first, so concurrent reconcilers split the work.
 */
export async function reconcileOnce(deps: PlaceOrderDeps, opts: ReconcileOptions): Promise<ReconcileReport> {
  const now = new Date();
  const take = opts.batchSize ?? 100;
  const [nowAt, stuckBefore] = [sqlTime(now), sqlTime(new Date(now.getTime() - opts.stuckAfterMs))];
  const report: ReconcileReport = { paymentsRetried: 0, paymentsAnswered: 0, paymentsSelected: 0, fulfilmentsRequeued: 0 };

  const claimUntil = sqlTime(new Date(now.getTime() + opts.claimMs));
  // With ignoreBackoff the claim horizon is part of "due": see DUE_OR_BACKING_OFF.
  const [due, dueArgs] = opts.ignoreBackoff ? [DUE_OR_BACKING_OFF, [nowAt, claimUntil]] : [DUE, [nowAt]];
  const awaitingPayment = deps.sql.read((tx) =>
    selectOrders(tx, `(status = 'payment_pending' OR (status = 'created' AND created_at < ?)) AND ${due} ORDER BY created_at LIMIT ?`, stuckBefore, ...dueArgs, take),
  );
  report.paymentsSelected = awaitingPayment.length;
  // One commit claims the whole batch.
  const claimed = awaitingPayment.length ? await deps.sql.write((tx) => awaitingPayment.filter((o) => claim(tx, o.id, o.status, due, dueArgs, claimUntil))) : [];
  await eachAtMost(opts.concurrency ?? 1, claimed, async (order) => {
    const settled = await settlePayment(deps, order, { correlationId: order.correlationId });
    report.paymentsRetried++;
    if (settled.status !== 'payment_pending') report.paymentsAnswered++;
  });

  const unshipped = deps.sql.read((tx) => selectOrders(tx, `status = 'paid' AND paid_at < ? AND ${DUE} ORDER BY paid_at LIMIT ?`, stuckBefore, nowAt, take));
  const requeueUntil = sqlTime(new Date(now.getTime() + opts.stuckAfterMs));
  for (const order of unshipped) {
    const messages = await deps.sql.write((tx) => {
      if (!claim(tx, order.id, 'paid', DUE, [nowAt], requeueUntil)) return [];
      const messages = [jobMessage(Jobs.fulfillOrder, createJob(Jobs.fulfillOrder, { order_id: order.id }, { correlationId: order.correlationId }))];
      insertOutbox(tx, messages);
      return messages;
    });
    if (messages.length === 0) continue;
    deps.log.warn({ order_id: order.id, correlation_id: order.correlationId, job_id: messages[0]!.id }, 'reconciler: order paid but not shipped; fulfilment queued again');
    await deps.outbox.publish(messages);
    report.fulfilmentsRequeued++;
  }
  return report;
}

/** Takes an order for re-driving until `until`, if it is still in `status` and `due`. */
function claim(tx: Sql, id: string, status: string, due: string, dueArgs: string[], until: string): boolean {
  return tx.stmt(`UPDATE orders SET next_attempt_at = ? WHERE id = ? AND status = ? AND ${due}`).run(until, id, status, ...dueArgs).changes === 1;
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function eachAtMost<T>(limit: number, items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
