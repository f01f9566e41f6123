import { EventEmitter } from 'node:events';
import type { Subscription } from 'nats';
import { MetricEvents, ORDER_SUBJECTS_WILDCARD, parseEvent, WorkerHeartbeat, type Heartbeat } from '../../events/contracts.js';
import { summarize } from '../../orders/activity.js';
import type { Runtime } from '../../runtime/context.js';

const STOPPED_SHOWN_MS = 60_000;
const SILENT_SHOWN_MS = 10 * 60_000;

/** One event as the live pages show it. */
export interface LiveEvent {
  subject: string;
  event_id: string;
  order_id: string | null;
  correlation_id: string;
  occurred_at: string;
  summary: string;
}

/**
 * The web process's window on NATS for live pages: core subscriptions on orders.*,
 * metrics.orders (analytics connection) and heartbeats, fanned out to every open SSE stream.
 * Core subscriptions on purpose: a live view wants what happens now, not a replay.
 */
export class LiveHub {
  private readonly emitter = new EventEmitter();
  private readonly subs: Subscription[] = [];
  /** The latest messages as they came; parsed only when someone looks (most never are). */
  private raw: { subject: string; data: Uint8Array }[] = [];
  readonly heartbeats = new Map<string, Heartbeat & { seen_at: number }>();

  constructor(
    private readonly rt: Runtime,
    private readonly keep = 50,
  ) {
    this.emitter.setMaxListeners(0);
  }

  start(): void {
    const onEvent = (subject: string, data: Uint8Array) => {
      this.raw.push({ subject, data });
      if (this.raw.length > 2 * this.keep) this.raw = this.raw.slice(-this.keep);
      if (this.emitter.listenerCount('event') === 0) return;
      const live = toLive(subject, data);
      if (live) this.emitter.emit('event', live);
    };
    this.subs.push(
      this.rt.nats.default.subscribe(ORDER_SUBJECTS_WILDCARD, { callback: (err, m) => !err && onEvent(m.subject, m.data) }),
      this.rt.nats.analytics.subscribe(MetricEvents.orders.subject, { callback: (err, m) => !err && onEvent(m.subject, m.data) }),
      this.rt.nats.default.subscribe(WorkerHeartbeat.subject, {
        callback: (err, m) => {
          if (err) return;
          const hb = WorkerHeartbeat.schema.safeParse(safeJson(m.data));
          if (hb.success) this.heartbeats.set(`${hb.data.name}:${hb.data.pid}`, { ...hb.data, seen_at: Date.now() });
          this.forgetOld();
        },
      }),
    );
  }

  /**
   * A process that stopped is shown for a minute, one gone silent for ten (long enough to notice),
   * then dropped: a restarted worker has a new pid, and the old row would stay red forever.
   */
  forgetOld(now = Date.now()): void {
    for (const [key, h] of this.heartbeats) {
      const age = now - h.seen_at;
      if (age > (h.state === 'stopped' ? STOPPED_SHOWN_MS : SILENT_SHOWN_MS)) this.heartbeats.delete(key);
    }
  }

  /** The latest events, newest first. */
  get recent(): LiveEvent[] {
    return this.raw
      .slice(-this.keep)
      .reverse()
      .flatMap((m) => toLive(m.subject, m.data) ?? []);
  }

  /** Calls `listener` for every event until the returned function is called. */
  listen(listener: (e: LiveEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }

  stop(): void {
    for (const s of this.subs) s.unsubscribe();
    this.emitter.removeAllListeners();
  }
}

function toLive(subject: string, data: Uint8Array): LiveEvent | undefined {
  const parsed = parseEvent(subject, data);
  if (!parsed.ok) return undefined;
  const e = parsed.event;
  const d = e.data as { order_id?: string };
  return { subject, event_id: e.event_id, order_id: d.order_id ?? null, correlation_id: e.correlation_id, occurred_at: e.occurred_at, summary: summarize(e) };
}

function safeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    return null;
  }
}
