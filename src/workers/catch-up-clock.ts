import type { PlaceOrderDeps } from '../orders/place-order.js';
import type { ReconcileReport } from '../orders/reconcile.js';

interface Phase {
  n: number;
  ms: number;
}

/**
 * Where one catch-up's time goes: the reconciler's own calls to the payment service, the database
 * and the outbox publisher are timed while it catches up, and summed up in its "caught up" line
 * with the orders it settled and their rate. Sums and counts only: nothing kept per order.
 */
export class CatchUpClock {
  private startedAt = 0;
  private active = false;
  private orders = 0;
  private answered = 0;
  private claims = 0;
  private readonly phases: Record<'ask' | 'database' | 'publish', Phase> = {
    ask: { n: 0, ms: 0 },
    database: { n: 0, ms: 0 },
    publish: { n: 0, ms: 0 },
  };

  start(): void {
    this.startedAt = performance.now();
    this.active = true;
    this.orders = this.answered = this.claims = 0;
    for (const p of Object.values(this.phases)) p.n = p.ms = 0;
  }

  add(r: ReconcileReport): void {
    this.orders += r.paymentsRetried;
    this.answered += r.paymentsAnswered;
    this.claims += r.claims;
  }

  /** The catch-up so far (and it stops timing): for its last log line. */
  summary() {
    this.active = false;
    const s = (performance.now() - this.startedAt) / 1000;
    const avg = (p: Phase) => (p.n ? Math.round((p.ms / p.n) * 10) / 10 : 0);
    return {
      orders: this.orders,
      answered: this.answered,
      seconds: Math.round(s * 10) / 10,
      per_s: s > 0 ? Math.round(this.answered / s) : 0,
      claims: this.claims,
      transactions: this.phases.database.n,
      avg_ms: { ask: avg(this.phases.ask), database: avg(this.phases.database), publish: avg(this.phases.publish) },
    };
  }

  /** `deps` with the three calls timed while a catch-up runs. */
  timing(deps: PlaceOrderDeps): PlaceOrderDeps {
    const timed =
      <A extends unknown[], R>(phase: Phase, fn: (...args: A) => Promise<R>) =>
      (...args: A): Promise<R> => {
        if (!this.active) return fn(...args);
        const t = performance.now();
        return fn(...args).finally(() => {
          phase.n++;
          phase.ms += performance.now() - t;
        });
      };
    const { storage, payments, outbox } = deps;
    return {
      ...deps,
      payments: { validate: timed(this.phases.ask, payments.validate.bind(payments)) },
      outbox: { publish: timed(this.phases.publish, outbox.publish.bind(outbox)) },
      storage: Object.assign(Object.create(storage) as typeof storage, { run: timed(this.phases.database, storage.run.bind(storage)) }),
    };
  }
}
