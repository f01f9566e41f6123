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
  /** Order pages' listeners by order id: an event costs a lookup, not a call per open page. */
  private readonly byOrder = new Map<string, Set<(e: LiveEvent) => void>>();
  /**
   * Dashboards' listeners get the events in batches, at most one every `batchMs` and at most
   * `keep` events each (the newest; the rest are counted as skipped): a flood of events costs a
   * dashboard a few writes a second, not one per event, and the events are parsed once per batch,
   * not once per message. A dashboard shows the latest 50 anyway.
   */
  private readonly batchListeners = new Set<(events: LiveEvent[], skipped: number) => void>();
  private pending: { subject: string; data: Uint8Array }[] = [];
  private skipped = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly subs: Subscription[] = [];
  /** The latest messages as they came; parsed only when someone looks (most never are). */
  private raw: { subject: string; data: Uint8Array }[] = [];
  /** The latest beat of every instance, by heartbeatKey. */
  readonly heartbeats = new Map<string, Heartbeat & { seen_at: number }>();

  constructor(
    private readonly rt: Runtime,
    private readonly keep = 50,
    private readonly batchMs = 250,
  ) {
    this.emitter.setMaxListeners(0);
  }

  start(): void {
    const onEvent = (subject: string, data: Uint8Array) => {
      this.raw.push({ subject, data });
      if (this.raw.length > 2 * this.keep) this.raw = this.raw.slice(-this.keep);
      if (this.batchListeners.size > 0) this.queue(subject, data);
      const everything = this.emitter.listenerCount('event') > 0;
      // Order pages want their own order only: a JSON.parse finds out whether anyone waits for
      // this one before the full (zod) parse, which a flood of events would otherwise pay each time.
      if (!everything && (this.byOrder.size === 0 || !this.byOrder.has(orderIdOf(data) ?? ''))) return;
      const live = toLive(subject, data);
      if (!live) return;
      if (everything) this.emitter.emit('event', live);
      if (live.order_id) for (const l of this.byOrder.get(live.order_id) ?? []) l(live);
    };
    this.subs.push(
      this.rt.nats.default.subscribe(ORDER_SUBJECTS_WILDCARD, { callback: (err, m) => !err && onEvent(m.subject, m.data) }),
      this.rt.nats.analytics.subscribe(MetricEvents.orders.subject, { callback: (err, m) => !err && onEvent(m.subject, m.data) }),
      this.rt.nats.default.subscribe(WorkerHeartbeat.subjects, {
        callback: (err, m) => {
          if (err) return;
          const hb = WorkerHeartbeat.schema.safeParse(safeJson(m.data));
          // Only the identity allowed to publish on orderflow.heartbeat.<name> may say <name> is up.
          if (hb.success && m.subject === WorkerHeartbeat.subjectFor(hb.data.name)) this.record(hb.data);
          this.forgetOld();
        },
      }),
    );
  }

  /**
   * One row per instance (`payments-2` on its host): a restarted instance replaces its previous
   * life (a newer started_at) rather than adding a row. A beat of an older life is ignored: two
   * live processes claiming one instance name would otherwise take turns on the row; the newer wins.
   */
  private record(hb: Heartbeat): void {
    const key = heartbeatKey(hb);
    const held = this.heartbeats.get(key);
    if (held && held.pid !== hb.pid && held.started_at > hb.started_at) return;
    this.heartbeats.set(key, { ...hb, seen_at: Date.now() });
  }

  /**
   * A process that stopped is shown for a minute, one gone silent for ten (long enough to notice),
   * then dropped: an instance that never comes back (scaled down, its machine gone) would
   * otherwise stay red forever.
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

  /** Calls `listener` with the events since the last call (see batchListeners) until the returned function is called. */
  listenBatches(listener: (events: LiveEvent[], skipped: number) => void): () => void {
    this.batchListeners.add(listener);
    return () => {
      this.batchListeners.delete(listener);
    };
  }

  private queue(subject: string, data: Uint8Array): void {
    this.pending.push({ subject, data });
    if (this.pending.length > this.keep) {
      this.skipped += this.pending.length - this.keep;
      this.pending = this.pending.slice(-this.keep);
    }
    this.flushTimer ??= setTimeout(() => this.flush(), this.batchMs);
  }

  private flush(): void {
    this.flushTimer = undefined;
    const events = this.pending.flatMap((m) => toLive(m.subject, m.data) ?? []);
    const skipped = this.skipped;
    this.pending = [];
    this.skipped = 0;
    if (events.length === 0 && skipped === 0) return;
    for (const l of this.batchListeners) l(events, skipped);
  }

  /** Calls `listener` for every event about one order until the returned function is called. */
  listenOrder(orderId: string, listener: (e: LiveEvent) => void): () => void {
    let set = this.byOrder.get(orderId);
    if (!set) this.byOrder.set(orderId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.byOrder.get(orderId) === set) this.byOrder.delete(orderId);
    };
  }

  stop(): void {
    this.byOrder.clear();
    this.batchListeners.clear();
    clearTimeout(this.flushTimer);
    for (const s of this.subs) s.unsubscribe();
    this.emitter.removeAllListeners();
  }
}

/** An instance is its name on its host: copies on two machines may both be `payments`. */
export const heartbeatKey = (hb: Pick<Heartbeat, 'name' | 'instance' | 'host'>) => `${hb.instance ?? hb.name}@${hb.host}`;

function toLive(subject: string, data: Uint8Array): LiveEvent | undefined {
  const parsed = parseEvent(subject, data);
  if (!parsed.ok) return undefined;
  const e = parsed.event;
  const d = e.data as { order_id?: string };
  return { subject, event_id: e.event_id, order_id: d.order_id ?? null, correlation_id: e.correlation_id, occurred_at: e.occurred_at, summary: summarize(e) };
}

function orderIdOf(data: Uint8Array): string | undefined {
  const id = (safeJson(data) as { data?: { order_id?: unknown } } | null)?.data?.order_id;
  return typeof id === 'string' ? id : undefined;
}

function safeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    return null;
  }
}
