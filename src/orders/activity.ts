import type { Envelope } from '../events/contracts.js';
import { formatCents } from './money.js';
import type { NewActivity } from './order.js';
import type { UnitOfWork } from './ports.js';

/** One human line per event, for the console and the activity table. */
export function summarize(event: Envelope): string {
  const d = (event.data ?? {}) as Record<string, unknown>;
  const ref = typeof d.reference === 'string' ? d.reference : ((d.order_id as string | undefined) ?? '?');
  switch (event.type) {
    case 'orders.created':
      return `${ref} created for ${String(d.customer_email)}: ${formatCents(Number(d.amount_cents))} ${String(d.currency ?? '')}`.trim();
    case 'orders.paid':
      return `${ref} paid (${String(d.transaction_id)})`;
    case 'orders.declined':
      return `${ref} payment declined: ${String(d.reason)}`;
    case 'orders.shipped':
      return `${ref} shipped`;
    case 'metrics.orders':
      return `${ref}: ${String(d.event)} after ${String(d.lead_time_ms)} ms (${formatCents(Number(d.amount_cents))})`;
    default:
      return `${event.type} ${ref}`;
  }
}

/**
 * Records an event once per (consumer, event id): `ON CONFLICT DO NOTHING` against the unique
 * index. Returns whether its row is new. `within`: see UnitOfWork.run.
 */
export function recordActivity(storage: UnitOfWork, consumer: string, subject: string, event: Envelope, opts: { within?: number } = {}): Promise<boolean> {
  // The row (its summary, its JSON) is made before the unit of work: the write lock is held for the statement only.
  const row = activityRow(consumer, subject, event);
  return storage.run((tx) => tx.activity.record(row), opts);
}

export function activityRow(consumer: string, subject: string, event: Envelope, receivedAt = new Date()): NewActivity {
  const d = (event.data ?? {}) as Record<string, unknown>;
  return {
    consumer,
    subject,
    eventId: event.event_id,
    eventType: event.type,
    orderId: typeof d.order_id === 'string' ? d.order_id : null,
    correlationId: event.correlation_id ?? null,
    summary: summarize(event),
    payload: JSON.stringify(event),
    occurredAt: new Date(event.occurred_at),
    receivedAt,
  };
}

interface Waiting {
  row: NewActivity;
  resolve: (fresh: boolean) => void;
  reject: (err: unknown) => void;
}

/**
 * Records rows in batches: the rows that arrive within `withinMs` (at most `maxRows`) are one unit
 * of work, and so one commit. The writer gives each unit a savepoint, a promise and its own `tx`;
 * for a consumer that records thousands of rows a second and waits on none, that per-unit cost
 * was a good part of the work. A batch that fails is tried again row by row (still one commit),
 * so a row that cannot be written fails only its own message.
 */
export class ActivityRecorder {
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly storage: UnitOfWork,
    private readonly withinMs: number,
    private readonly maxRows = 256,
  ) {}

  /** Whether the row is new; settles once its batch has committed. */
  record(row: NewActivity): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.waiting.push({ row, resolve, reject });
      if (this.waiting.length >= this.maxRows) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.withinMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting;
    this.waiting = [];
    if (batch.length === 0) return;
    this.storage
      .run(async (tx) => {
        const fresh: boolean[] = [];
        for (const w of batch) fresh.push(await tx.activity.record(w.row));
        return fresh;
      })
      .then(
        (fresh) => {
          for (const [i, w] of batch.entries()) w.resolve(fresh[i]!);
        },
        () => {
          if (batch.length === 1) return this.alone(batch[0]!);
          for (const w of batch) this.alone(w);
        },
      );
  }

  private alone(w: Waiting): void {
    this.storage.run((tx) => tx.activity.record(w.row)).then(w.resolve, w.reject);
  }
}
