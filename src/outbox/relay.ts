import type { JetStreamClient } from 'nats';
import type { Logger } from 'pino';
import type { Db } from '../db/client.js';
import { toMsgHdrs } from '../nats/codec.js';
import { eventsPublished } from '../observability/metrics.js';

export interface RelayOptions {
  /** The sweep publishes rows older than this, leaving fresh ones to the process that wrote them. */
  sweepAfterMs?: number;
  sweepEveryMs?: number;
  batchSize?: number;
  publishTimeoutMs?: number;
}

/**
 * Publishes outbox rows to JetStream and marks them published.
 * - `publish(ids)`: the fast path, called by the writer right after its transaction commits.
 * - `start()`: the sweep, for rows a crash or a NATS outage left behind; it backs off (up to 5 s)
 *   while NATS is unreachable and resumes by itself.
 * A row published twice (crash between publish and mark, or two relays) carries the same
 * Nats-Msg-Id, so JetStream stores it once within the stream's duplicate window.
 */
export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private failures = 0;
  private readonly opts: Required<RelayOptions>;
  private readonly encoder = new TextEncoder();

  constructor(
    private readonly db: Db,
    private readonly js: JetStreamClient,
    private readonly log: Logger,
    opts: RelayOptions = {},
    /** Whether NATS is connected: the fast path skips straight to "left for the sweep" when not. */
    private readonly isUp: () => boolean = () => true,
  ) {
    this.opts = { sweepAfterMs: 1000, sweepEveryMs: 500, batchSize: 200, publishTimeoutMs: 3000, ...opts };
  }

  /** Publishes these rows now, in the given order. Never throws: what fails is left for the sweep. */
  async publish(ids: string[]): Promise<boolean> {
    if (ids.length === 0) return true;
    if (!this.isUp()) return false;
    const rows = await this.db.outboxMessage.findMany({ where: { id: { in: ids }, publishedAt: null } });
    const byId = new Map(rows.map((r) => [r.id, r]));
    return this.publishRows(ids.map((id) => byId.get(id)).filter((r) => r !== undefined));
  }

  /** One sweep pass: the oldest unpublished rows first. Returns how many were published. */
  async sweep(): Promise<number> {
    const rows = await this.db.outboxMessage.findMany({
      where: { publishedAt: null, createdAt: { lt: new Date(Date.now() - this.opts.sweepAfterMs) } },
      orderBy: { createdAt: 'asc' },
      take: this.opts.batchSize,
    });
    if (rows.length === 0) return 0;
    const ok = await this.publishRows(rows);
    if (ok) this.log.info({ count: rows.length }, 'outbox: published rows left behind');
    return ok ? rows.length : 0;
  }

  start(): void {
    const tick = async () => {
      if (this.stopped) return;
      let delay = this.opts.sweepEveryMs;
      try {
        this.running = this.sweep();
        const n = (await this.running) as number;
        if (n === this.opts.batchSize) delay = 0;
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'outbox sweep failed');
      }
      if (this.failures > 0) delay = Math.min(5000, this.opts.sweepEveryMs * 2 ** this.failures);
      if (!this.stopped) this.timer = setTimeout(tick, delay);
    };
    this.timer = setTimeout(tick, this.opts.sweepEveryMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running.catch(() => undefined);
  }

  private async publishRows(rows: { id: string; subject: string; payload: string; headers: string }[]): Promise<boolean> {
    const done: string[] = [];
    let failed: { id: string; error: string } | undefined;
    for (const row of rows) {
      try {
        await this.js.publish(row.subject, this.encoder.encode(row.payload), {
          msgID: row.id,
          headers: toMsgHdrs(JSON.parse(row.headers) as Record<string, string>),
          timeout: this.opts.publishTimeoutMs,
        });
        done.push(row.id);
        eventsPublished.inc({ subject: row.subject });
      } catch (err) {
        // Stop at the first failure: later rows must not overtake an earlier one of the same order.
        failed = { id: row.id, error: (err as Error).message };
        break;
      }
    }
    if (done.length) await this.db.outboxMessage.updateMany({ where: { id: { in: done } }, data: { publishedAt: new Date() } });
    if (failed) {
      this.failures = Math.min(this.failures + 1, 6);
      await this.db.outboxMessage
        .update({ where: { id: failed.id }, data: { attempts: { increment: 1 }, lastError: failed.error.slice(0, 500) } })
        .catch(() => undefined);
      this.log.warn({ outbox_id: failed.id, error: failed.error, pending: rows.length - done.length }, 'outbox: publish failed; will retry');
      return false;
    }
    this.failures = 0;
    return true;
  }
}
