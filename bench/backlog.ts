/**
 * How far behind each stage of the pipeline is: what it has not finished, and the age of the
 * oldest such item. A flat count of unfinished orders is not enough: the activity consumer, the
 * job queue or the outbox relay can fall seconds behind while every order already reads shipped.
 */
import type { JetStreamManager } from 'nats';
import { ACTIVITY_CONSUMER, type ConsumerDefinition, FULFILLMENT_CONSUMER } from '../src/nats/topology.js';
import type { BenchDb, CountSince } from './db.js';

export interface StageLag {
  /** Items not finished by this stage. */
  pending: number;
  /** Age (ms) of the oldest of them; 0 when there are none. */
  oldest_ms: number;
}

export const STAGES = ['orders', 'outbox', 'activity', 'fulfillment_jobs'] as const;
export type Stage = (typeof STAGES)[number];
export type Backlog = Record<Stage, StageLag>;

export class Pipeline {
  constructor(
    private readonly db: BenchDb,
    private readonly jsm: JetStreamManager,
  ) {}

  /** Orders in a final state (shipped or declined). */
  finished(): Promise<number> {
    return this.db.finished();
  }

  async backlog(): Promise<Backlog> {
    const now = Date.now();
    const fromRow = (r: CountSince): StageLag => ({ pending: r.n, oldest_ms: r.oldest === null ? 0 : Math.max(0, now - r.oldest) });
    const [orders, outbox, activity, jobs] = await Promise.all([
      this.db.openOrders(),
      this.db.unpublished(),
      this.consumerLag(ACTIVITY_CONSUMER, now),
      this.consumerLag(FULFILLMENT_CONSUMER, now),
    ]);
    return { orders: fromRow(orders), outbox: fromRow(outbox), activity, fulfillment_jobs: jobs };
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
