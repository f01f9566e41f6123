import type { JetStreamManager } from 'nats';
import { DLQ_STREAM } from '../nats/dead-letters.js';
import { consumerDefinitions } from '../nats/topology.js';
import { consumerAckPending, consumerPending, deadLetters, oldestUnprocessed, ordersByStatus } from './metrics.js';
import { orderStatus } from '../events/contracts.js';
import type { StorageReads } from '../orders/ports.js';

/** Fills the system-wide gauges from the database and JetStream; called on each scrape. */
export async function refreshSystemGauges(reads: Pick<StorageReads, 'statusCounts' | 'outboxStats'>, jsm: JetStreamManager): Promise<void> {
  const { byStatus } = await reads.statusCounts();
  for (const s of orderStatus.options) ordersByStatus.set({ status: s }, byStatus[s] ?? 0);

  const { oldestUnpublishedAt } = await reads.outboxStats();
  oldestUnprocessed.set({ source: 'outbox' }, oldestUnpublishedAt ? (Date.now() - oldestUnpublishedAt.getTime()) / 1000 : 0);

  for (const def of consumerDefinitions()) {
    const name = def.config.durable_name;
    const info = await jsm.consumers.info(def.stream, name).catch(() => null);
    if (!info) continue;
    consumerPending.set({ stream: def.stream, consumer: name }, info.num_pending);
    consumerAckPending.set({ stream: def.stream, consumer: name }, info.num_ack_pending);
    let age = 0;
    if (info.num_pending + info.num_ack_pending > 0) {
      // The next message the consumer has not finished: one past its ack floor.
      const next = await jsm.streams.getMessage(def.stream, { seq: info.ack_floor.stream_seq + 1 }).catch(() => null);
      if (next) age = (Date.now() - next.time.getTime()) / 1000;
    }
    oldestUnprocessed.set({ source: name }, age);
  }
  const dlq = await jsm.streams.info(DLQ_STREAM).catch(() => null);
  deadLetters.set(dlq?.state.messages ?? 0);
}
