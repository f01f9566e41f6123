import { createJob, Jobs } from '../events/jobs.js';
import { jobMessage } from '../outbox/outbox.js';
import { settlePayment, type PlaceOrderDeps } from './place-order.js';

export interface ReconcileOptions {
  /** An order in a non-final state this long is re-driven (STUCK_AFTER_MS). */
  stuckAfterMs: number;
  /** How long a claimed payment retry is held, so two reconcilers do not ask twice at once. */
  claimMs: number;
  batchSize?: number;
}

export interface ReconcileReport {
  paymentsRetried: number;
  fulfilmentsRequeued: number;
}

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
  const limit = opts.batchSize ?? 100;
  const stuckBefore = new Date(now.getTime() - opts.stuckAfterMs);
  const report: ReconcileReport = { paymentsRetried: 0, fulfilmentsRequeued: 0 };

  const awaitingPayment = await deps.storage.awaitingPayment({ now, stuckBefore, limit });
  const claimUntil = new Date(now.getTime() + opts.claimMs);
  for (const order of awaitingPayment) {
    if (!(await deps.storage.run((tx) => tx.orders.claim(order.id, order.status, now, claimUntil)))) continue;
    await settlePayment(deps, order, { correlationId: order.correlationId });
    report.paymentsRetried++;
  }

  const unshipped = await deps.storage.unshipped({ now, paidBefore: stuckBefore, limit });
  const requeueUntil = new Date(now.getTime() + opts.stuckAfterMs);
  for (const order of unshipped) {
    const messages = await deps.storage.run(async (tx) => {
      if (!(await tx.orders.claim(order.id, 'paid', now, requeueUntil))) return [];
      const messages = [jobMessage(Jobs.fulfillOrder, createJob(Jobs.fulfillOrder, { order_id: order.id }, { correlationId: order.correlationId }))];
      await tx.outbox.add(messages, now);
      return messages;
    });
    if (messages.length === 0) continue;
    deps.log.warn({ order_id: order.id, correlation_id: order.correlationId, job_id: messages[0]!.id }, 'reconciler: order paid but not shipped; fulfilment queued again');
    await deps.outbox.publish(messages);
    report.fulfilmentsRequeued++;
  }
  return report;
}
