import { reconcileOnce } from '../orders/reconcile.js';
import { orderDeps, type Runtime } from '../runtime/context.js';
import { reconciled } from '../observability/metrics.js';

/**
 * Keeps the promise that every accepted order reaches a final state: sweeps the outbox for rows
 * a crash or an outage left unpublished, retries payments with backoff, and re-queues fulfilment
 * for paid orders that were never shipped.
 */
export function startReconciler(rt: Runtime, opts: { intervalMs?: number } = {}): { stop(): Promise<void> } {
  const log = rt.log.child({ worker: 'reconciler' });
  const deps = { ...orderDeps(rt), log };
  const interval = opts.intervalMs ?? 500;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<unknown> = Promise.resolve();

  rt.outbox.start();
  const tick = async () => {
    try {
      pass = reconcileOnce(deps, { stuckAfterMs: rt.config.STUCK_AFTER_MS, claimMs: rt.config.PAYMENT_TIMEOUT_MS + 1000 });
      const r = (await pass) as Awaited<ReturnType<typeof reconcileOnce>>;
      if (r.paymentsRetried || r.fulfilmentsRequeued) log.info(r, 'reconciled');
      if (r.paymentsRetried) reconciled.inc({ action: 'payment_retried' }, r.paymentsRetried);
      if (r.fulfilmentsRequeued) reconciled.inc({ action: 'fulfilment_requeued' }, r.fulfilmentsRequeued);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'reconcile pass failed; will try again');
    }
    if (!stopped) timer = setTimeout(tick, interval);
  };
  timer = setTimeout(tick, 0);
  log.info({ interval_ms: interval, stuck_after_ms: rt.config.STUCK_AFTER_MS }, 'reconciler running');
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await pass.catch(() => undefined);
      await rt.outbox.stop();
    },
  };
}
