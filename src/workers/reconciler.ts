import { onReconnect } from '../nats/connections.js';
import { reconciled } from '../observability/metrics.js';
import { type ReconcileReport, reconcileOnce } from '../orders/reconcile.js';
import { orderDeps, type Runtime } from '../runtime/context.js';

export interface ReconcilerOptions {
  intervalMs?: number;
  /** Orders taken per pass. */
  batchSize?: number;
  /** Payments asked at once: after an outage the pace is this, not the retry timers. */
  concurrency?: number;
}

/**
 * Keeps the promise that every accepted order reaches a final state: sweeps the outbox for rows
 * a crash or an outage left unpublished, retries payments with backoff, and re-queues fulfilment
 * for paid orders that were never shipped.
 *
 * Backoff is the pace only while a dependency is away. When it answers again — the NATS
 * connection is back, or the payment service answers after failing — every waiting order is taken
 * at once, whatever its timer says, in batches of `batchSize` with `concurrency` payments in
 * flight, pass after pass without a pause until none waits (`catching up`). While the payment
 * service fails, one waiting order is asked each pass regardless of its timer: the probe that
 * notices it is back.
 */
export function startReconciler(rt: Runtime, opts: ReconcilerOptions = {}): { stop(): Promise<void> } {
  const log = rt.log.child({ worker: 'reconciler' });
  const deps = { ...orderDeps(rt), log };
  const interval = opts.intervalMs ?? 500;
  const batchSize = opts.batchSize ?? 200;
  const concurrency = opts.concurrency ?? 32;
  const base = { stuckAfterMs: rt.config.STUCK_AFTER_MS, claimMs: rt.config.PAYMENT_TIMEOUT_MS + 1000, batchSize };
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<unknown> = Promise.resolve();
  let running = false;
  /** The last payment asked was not answered: probe each pass until one is. */
  let failing = false;
  /** A dependency answers again: take every waiting order now. */
  let catchingUp = false;

  const catchUp = (why: string) => {
    if (!catchingUp) log.info({ reason: why }, 'catching up: every waiting order is retried now, at capacity');
    catchingUp = true;
    failing = false;
    if (!running && !stopped) {
      clearTimeout(timer);
      timer = setTimeout(tick, 0);
    }
  };

  const count = (r: ReconcileReport) => {
    if (r.paymentsRetried || r.fulfilmentsRequeued) log.info(r, 'reconciled');
    if (r.paymentsRetried) reconciled.inc({ action: 'payment_retried' }, r.paymentsRetried);
    if (r.fulfilmentsRequeued) reconciled.inc({ action: 'fulfilment_requeued' }, r.fulfilmentsRequeued);
  };

  rt.outbox.start();
  const stopWatching = onReconnect(rt.nats.default, () => {
    rt.outbox.wake();
    catchUp('NATS connection back');
  });
  const tick = async () => {
    running = true;
    let more = false;
    try {
      const mode = catchingUp;
      pass = reconcileOnce(deps, { ...base, ignoreBackoff: mode, concurrency });
      const r = (await pass) as ReconcileReport;
      count(r);
      const unanswered = r.paymentsRetried - r.paymentsAnswered;
      if (mode && (unanswered > 0 || r.paymentsSelected < batchSize)) {
        // Drained, or the dependency fails again (then back to timers, and the probe).
        catchingUp = false;
        failing = unanswered > 0;
        if (!failing) log.info('caught up: no order waits for payment');
      } else if (!mode) {
        if (r.paymentsAnswered > 0 && failing) catchUp('the payment service answers again');
        else if (unanswered > 0) failing = true;
        else if (failing && r.paymentsRetried === 0 && !catchingUp) {
          // Nothing was due: ask about one waiting order anyway, to see whether payments answer.
          const probe = (await (pass = reconcileOnce(deps, { ...base, batchSize: 1, ignoreBackoff: true }))) as ReconcileReport;
          count(probe);
          if (probe.paymentsAnswered > 0) catchUp('the payment service answers again');
        }
      }
      more = catchingUp || r.paymentsSelected === batchSize;
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'reconcile pass failed; will try again');
    }
    running = false;
    if (!stopped) timer = setTimeout(tick, more ? 0 : interval);
  };
  timer = setTimeout(tick, 0);
  log.info({ interval_ms: interval, stuck_after_ms: rt.config.STUCK_AFTER_MS, batch_size: batchSize, concurrency }, 'reconciler running');
  return {
    async stop() {
      stopped = true;
      stopWatching();
      clearTimeout(timer);
      await pass.catch(() => undefined);
      await rt.outbox.stop();
    },
  };
}
