import { isConnected, onReconnect } from '../nats/connections.js';
import { reconciled } from '../observability/metrics.js';
import { InFlightWindow } from '../orders/in-flight-window.js';
import { type ReconcileReport, reconcileOnce } from '../orders/reconcile.js';
import { orderDeps, type Runtime } from '../runtime/context.js';
import { CatchUpClock } from './catch-up-clock.js';

export interface ReconcilerOptions {
  intervalMs?: number;
  /** Orders taken per pass on the timers. */
  batchSize?: number;
  /** Orders taken per pass while catching up (passes follow each other without a pause). */
  catchUpBatchSize?: number;
  /** Payments asked at once at most; the pace within that follows how fast answers come back. */
  maxConcurrency?: number;
}

/**
 * Keeps the promise that every accepted order reaches a final state: sweeps the outbox for rows
 * a crash or an outage left unpublished, retries payments with backoff, and re-queues fulfilment
 * for paid orders that were never shipped.
 *
 * Backoff is the pace only while a dependency is away. When it answers again — the NATS
 * connection is back, or the payment service answers after failing — every waiting order is taken
 * at once, whatever its timer says (`catching up`), pass after pass without a pause until none
 * waits. The pace is capacity: as many payments in flight as answers come back for without
 * slowing down (InFlightWindow), each claim taking what the window has free in one transaction.
 * An order that is not answered meanwhile shrinks the window and is taken again; only a pass in
 * which nothing was answered ends the catch-up (the dependency is away again). While the payment
 * service fails, each pass asks about one waiting order only, whatever its timer: the probe whose
 * first answer starts the catch-up. While the NATS connection is down nothing is asked at all: the
 * reconnect is the signal. A reconciler that starts catches up too (what waited while none ran).
 */
export function startReconciler(rt: Runtime, opts: ReconcilerOptions = {}): { stop(): Promise<void> } {
  const log = rt.log.child({ worker: 'reconciler' });
  const clock = new CatchUpClock();
  const deps = clock.timing({ ...orderDeps(rt), log });
  const interval = opts.intervalMs ?? 500;
  const batchSize = opts.batchSize ?? 200;
  const catchUpBatchSize = opts.catchUpBatchSize ?? 2000;
  const window = new InFlightWindow({ max: opts.maxConcurrency ?? 128 });
  // A claim covers being asked within 3 s of it, the request's own timeout, and 3 s to settle the
  // answer: on a starved machine (load 30–50 on two cores) settling alone took 1–1.5 s, and a
  // claim of the timeout plus one second ran out under a tenth of the orders, which the other
  // reconciler then asked about again.
  const base = { stuckAfterMs: rt.config.STUCK_AFTER_MS, claimMs: rt.config.PAYMENT_TIMEOUT_MS + 6000, askWithinMs: 3000 };
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<unknown> = Promise.resolve();
  let running = false;
  /** The last payment asked was not answered: probe each pass until one is. */
  let failing = false;
  /** A dependency answers again: take every waiting order now. */
  let catchingUp = false;
  const keepGoing = () => !stopped && isConnected(rt.nats.default);

  const catchUp = (why: string) => {
    if (!catchingUp) {
      log.info({ reason: why }, 'catching up: every waiting order is retried now, at capacity');
      clock.start();
      // After an outage the system is not the one measured before it.
      window.relearn();
    }
    catchingUp = true;
    failing = false;
    if (!running && !stopped) {
      clearTimeout(timer);
      timer = setTimeout(tick, 0);
    }
  };

  const count = (r: ReconcileReport) => {
    if (r.paymentsRetried || r.fulfilmentsRequeued) log.info({ ...r, window: window.size }, 'reconciled');
    if (r.paymentsRetried) reconciled.inc({ action: 'payment_retried' }, r.paymentsRetried);
    if (r.fulfilmentsRequeued) reconciled.inc({ action: 'fulfilment_requeued' }, r.fulfilmentsRequeued);
  };

  const run = async (o: Parameters<typeof reconcileOnce>[1]) => {
    pass = reconcileOnce(deps, o);
    const r = (await pass) as ReconcileReport;
    count(r);
    return r;
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
      if (!isConnected(rt.nats.default)) {
        // Nothing can be asked or published; the reconnect starts a catch-up (again).
        if (catchingUp) log.warn(clock.summary(), 'catch-up suspended: the NATS connection is down');
        catchingUp = false;
      } else if (catchingUp) {
        // Fulfilment is not re-queued meanwhile: paid orders queue up for shipping by design now.
        const r = await run({ ...base, batchSize: catchUpBatchSize, ignoreBackoff: true, window, keepGoing, unshipped: false });
        clock.add(r);
        if (r.paymentsRetried === 0 && keepGoing()) {
          catchingUp = false;
          log.info({ ...clock.summary(), window: window.size }, 'caught up: no order waits for payment');
        } else if (r.paymentsRetried > 0 && r.paymentsAnswered === 0) {
          // Nothing answered at all: the payment service is away again. The probe says when it is back.
          catchingUp = false;
          failing = true;
          log.warn({ ...clock.summary(), window: window.size }, 'catch-up stopped: the payment service does not answer; probing until it does');
        }
        more = catchingUp;
      } else if (failing) {
        // One waiting order, whatever its timer: the probe that notices the payment service is back.
        const probe = await run({ ...base, batchSize: 1, ignoreBackoff: true, keepGoing });
        if (probe.paymentsAnswered > 0) catchUp('the payment service answers again');
        else if (probe.paymentsRetried === 0 && keepGoing()) failing = false; // nothing waits
        more = catchingUp;
      } else {
        const r = await run({ ...base, batchSize, window, keepGoing });
        const unanswered = r.paymentsRetried - r.paymentsAnswered;
        if (unanswered > 0) failing = true;
        // A full batch, all answered: more may be due now.
        more = !r.drained && unanswered === 0;
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'reconcile pass failed; will try again');
    }
    running = false;
    if (!stopped) timer = setTimeout(tick, more ? 0 : interval);
  };
  // Whatever waited while no reconciler ran (a deploy, a crash) is an outage too.
  catchUp('reconciler started');
  log.info(
    { interval_ms: interval, stuck_after_ms: rt.config.STUCK_AFTER_MS, batch_size: batchSize, max_concurrency: opts.maxConcurrency ?? 128 },
    'reconciler running',
  );
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
