import { randomUUID } from 'node:crypto';
import type { JetStreamClient } from 'nats';
import type { Logger } from 'pino';
import { Headers } from '../events/envelope.js';
import { publishToStream } from '../nats/publish.js';
import { eventsPublished } from '../observability/metrics.js';
import type { OutboxRow, UnitOfWork } from '../orders/ports.js';
import { retryDelay } from '../retry/backoff.js';
import type { OutboxMessage } from './outbox.js';

export interface RelayOptions {
  /** The sweep publishes rows older than this, leaving fresh ones to the process that wrote them. */
  sweepAfterMs?: number;
  sweepEveryMs?: number;
  batchSize?: number;
  publishTimeoutMs?: number;
  /** Marking rows published may wait this long to share a commit (see UnitOfWork.run). */
  markWithinMs?: number;
  /**
   * How long the sweep's lease on its rows lasts: other relays (other processes, other copies)
   * skip them until then. Longer than a batch takes to publish; a relay that dies mid-batch only
   * delays its rows by this much.
   */
  leaseMs?: number;
}

/**
 * Publishes outbox rows to JetStream and marks them published.
 * - `publish(messages)`: the fast path, called by the writer right after its transaction
 *   commits, with the messages it has in hand (no read back). The rows of one state change go
 *   out together; marking them published may wait a few ms to share a commit.
 * - `start()`: the sweep, for rows a crash or a NATS outage left behind (including rows
 *   published but not yet marked when the process died); oldest first, it backs off up to 5 s
 *   while NATS is unreachable and resumes by itself. It leases its batch (owner + lease-until),
 *   so relays in several processes never publish the same row at once.
 * A row published twice carries the same Nats-Msg-Id, so JetStream stores it once within the
 * stream's duplicate window.
 */
export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private sweeping = false;
  private tick: (() => Promise<void>) | undefined;
  private failures = 0;
  private readonly opts: Required<RelayOptions>;
  private readonly marking = new Set<Promise<unknown>>();
  private readonly inflight = new Set<Promise<boolean>>();
  /** This relay's name on its leases. */
  readonly owner = `relay-${randomUUID()}`;

  constructor(
    private readonly storage: UnitOfWork,
    private readonly js: JetStreamClient,
    private readonly log: Logger,
    opts: RelayOptions = {},
    /** Whether NATS is connected: the fast path skips straight to "left for the sweep" when not. */
    private readonly isUp: () => boolean = () => true,
  ) {
    this.opts = { sweepAfterMs: 1000, sweepEveryMs: 500, batchSize: 200, publishTimeoutMs: 3000, markWithinMs: 50, leaseMs: 30_000, ...opts };
  }

  /**
   * Publishes just-committed messages, once `after` (say, the publish of the order's earlier
   * event) has settled. Never throws: what fails is left for the sweep. Nobody has to await it:
   * the rows are committed, and stop() waits for what is in flight.
   */
  publish(messages: OutboxMessage[], opts: { after?: Promise<unknown> } = {}): Promise<boolean> {
    const p = (opts.after ?? Promise.resolve()).then(
      () => this.publishNow(messages),
      () => this.publishNow(messages),
    );
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
    return p;
  }

  private async publishNow(messages: OutboxMessage[]): Promise<boolean> {
    if (messages.length === 0) return true;
    if (!this.isUp()) return false;
    // One state change's messages (say orders.paid and its FulfillOrder job) go to different
    // streams and do not depend on each other: publish them at once.
    const results = await Promise.allSettled(messages.map((m) => this.send(m)));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ id: messages[i]!.id, error: (r.reason as Error).message }] : []));
    this.mark(messages.filter((_, i) => results[i]!.status === 'fulfilled').map((m) => m.id));
    for (const f of failed) await this.recordFailure(f.id, f.error, messages.length);
    return failed.length === 0;
  }

  /**
   * One sweep pass: the oldest unpublished rows first. Rows of one order (one correlation id) go
   * out one after the other, in the order they were written; different orders' go out at once,
   * so a batch takes about one round trip per row of its busiest order, not one per row.
   * Returns how many were published.
   */
  async sweep(): Promise<number> {
    // Disconnected, every publish would wait out its timeout; the reconnect wakes the sweep.
    if (!this.isUp()) return 0;
    const now = new Date();
    const rows = await this.storage.run((tx) =>
      tx.outbox.claimUnpublished({
        owner: this.owner,
        now,
        until: new Date(now.getTime() + this.opts.leaseMs),
        olderThan: new Date(now.getTime() - this.opts.sweepAfterMs),
        limit: this.opts.batchSize,
      }),
    );
    if (rows.length === 0) return 0;
    const lanes = new Map<string, OutboxRow[]>();
    for (const row of rows) {
      const order = row.headers[Headers.CorrelationId] ?? '';
      const lane = lanes.get(order);
      if (lane) lane.push(row);
      else lanes.set(order, [row]);
    }
    const done: string[] = [];
    let failed: { row: OutboxRow; error: string } | undefined;
    await Promise.all(
      [...lanes.values()].map(async (lane) => {
        for (const row of lane) {
          // After a failure nothing more is sent (NATS is likely away), and never a later row of
          // an order before an earlier one.
          if (failed) return;
          try {
            await this.send(row);
            done.push(row.id);
          } catch (err) {
            failed ??= { row, error: (err as Error).message };
            return;
          }
        }
      }),
    );
    if (failed) await this.recordFailure(failed.row.id, failed.error, rows.length - done.length);
    if (done.length) {
      await this.storage.run((tx) => tx.outbox.markPublished(done, new Date()));
      this.log.info({ count: done.length }, 'outbox: published rows left behind');
    }
    if (done.length === rows.length) this.failures = 0;
    return done.length;
  }

  start(): void {
    const tick = async () => {
      if (this.stopped) return;
      this.sweeping = true;
      let delay = this.opts.sweepEveryMs;
      try {
        this.running = this.sweep();
        const n = (await this.running) as number;
        if (n === this.opts.batchSize) delay = 0;
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'outbox sweep failed');
      }
      if (this.failures > 0) delay = retryDelay({ firstMs: this.opts.sweepEveryMs * 2, maxMs: 5000 }, this.failures);
      this.sweeping = false;
      if (!this.stopped) this.timer = setTimeout(tick, delay);
    };
    this.tick = tick;
    this.timer = setTimeout(tick, this.opts.sweepEveryMs);
  }

  /** NATS is back: sweep now, without the failure backoff, so what was left behind goes at once. */
  wake(): void {
    this.failures = 0;
    if (!this.tick || this.stopped || this.sweeping) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(this.tick, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running.catch(() => undefined);
    await Promise.all(this.inflight);
    await Promise.all(this.marking);
  }

  private async send(row: OutboxMessage): Promise<void> {
    await publishToStream(this.js, row, this.opts.publishTimeoutMs);
    eventsPublished.inc({ subject: row.subject });
  }

  /** Marks what was published; a mark lost to a crash only means the sweep publishes that row again (deduped). */
  private mark(ids: string[]): void {
    if (ids.length === 0) return;
    const p: Promise<unknown> = this.storage
      .run((tx) => tx.outbox.markPublished(ids, new Date()), { within: this.opts.markWithinMs })
      .catch((err: Error) => this.log.warn({ err: err.message, count: ids.length }, 'outbox: could not mark rows published; the sweep will publish them again'))
      .finally(() => this.marking.delete(p));
    this.marking.add(p);
  }

  private async recordFailure(id: string, error: string, pending: number): Promise<void> {
    this.failures = Math.min(this.failures + 1, 6);
    await this.storage.run((tx) => tx.outbox.recordFailure(id, error)).catch(() => undefined);
    this.log.warn({ outbox_id: id, error, pending }, 'outbox: publish failed; will retry');
  }
}
