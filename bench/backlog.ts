/**
 * How far behind each stage of the pipeline is: what it has not finished, and the age of the
 * oldest such item. A flat count of unfinished orders is not enough: the activity consumer, the
 * job queue or the outbox relay can fall seconds behind while every order already reads shipped.
 */
import type Database from 'better-sqlite3';
import type { JetStreamManager } from 'nats';
import { orderStatus } from '../src/events/contracts.js';
import { fromDbTime as fromSqlTime } from '../src/storage/schema.js';
import { ACTIVITY_CONSUMER, FULFILLMENT_CONSUMER, type ConsumerDefinition } from '../src/nats/topology.js';
import { FINAL_STATUSES } from '../src/orders/state.js';

export interface StageLag {
  /** Items not finished by this stage. */
  pending: number;
  /** Age (ms) of the oldest of them; 0 when there are none. */
  oldest_ms: number;
}

export const STAGES = ['orders', 'outbox', 'activity', 'fulfillment_jobs'] as const;
export type Stage = (typeof STAGES)[number];
export type Backlog = Record<Stage, StageLag>;

const OPEN = orderStatus.options.filter((s) => !FINAL_STATUSES.includes(s));
const FINAL = [...FINAL_STATUSES];
const marks = (n: number) => Array(n).fill('?').join(', ');

export class Pipeline {
  private readonly open;
  private readonly unpublished;
  private readonly final;

  constructor(
    db: Database.Database,
    private readonly jsm: JetStreamManager,
  ) {
    // Both use an index: orders (status, …), outbox (published_at, created_at).
    this.open = db.prepare(`SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM orders WHERE status IN (${marks(OPEN.length)})`).bind(...OPEN);
    this.unpublished = db.prepare('SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE published_at IS NULL');
    this.final = db.prepare(`SELECT COUNT(*) AS n FROM orders WHERE status IN (${marks(FINAL.length)})`).bind(...FINAL);
  }

  /** Orders in a final state (shipped or declined). */
  finished(): number {
    return (this.final.get() as { n: number }).n;
  }

  async backlog(): Promise<Backlog> {
    const now = Date.now();
    const fromRow = (r: { n: number; oldest: string | null }): StageLag => ({ pending: r.n, oldest_ms: r.oldest ? Math.max(0, now - fromSqlTime(r.oldest)!.getTime()) : 0 });
    const [activity, jobs] = await Promise.all([this.consumerLag(ACTIVITY_CONSUMER, now), this.consumerLag(FULFILLMENT_CONSUMER, now)]);
    return {
      orders: fromRow(this.open.get() as { n: number; oldest: string | null }),
      outbox: fromRow(this.unpublished.get() as { n: number; oldest: string | null }),
      activity,
      fulfillment_jobs: jobs,
    };
  }

  /**
   * A durable consumer's lag: messages not yet delivered plus delivered but not acked; the oldest
   * is the message just above its ack floor (everything at or below it is acked).
   */
  private async consumerLag(def: ConsumerDefinition, now: number): Promise<StageLag> {
    // A work-queue stream deletes a message once it is acked, which can happen between the two
    // requests: then look again, with the consumer's newer ack floor.
    for (let attempt = 0; attempt < 5; attempt++) {
      const info = await this.jsm.consumers.info(def.stream, def.config.durable_name);
      const pending = info.num_pending + info.num_ack_pending;
      if (pending === 0) return { pending, oldest_ms: 0 };
      const oldest = await this.jsm.streams.getMessage(def.stream, { seq: info.ack_floor.stream_seq + 1 }).catch(() => null);
      if (oldest) return { pending, oldest_ms: Math.max(0, now - oldest.time.getTime()) };
    }
    // Unknown: NaN, so no verdict is drawn from a lag nobody measured.
    return { pending: NaN, oldest_ms: NaN };
  }
}

export const backlogTotal = (b: Backlog) => STAGES.reduce((n, s) => n + b[s].pending, 0);
export const backlogOldest = (b: Backlog) => Math.max(...STAGES.map((s) => b[s].oldest_ms));
