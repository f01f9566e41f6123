import { type ConnectionOptions, connect, type NatsConnection } from 'nats';
import { type Envelope, MetricEvents, ORDER_SUBJECTS_ALL, parseEvent } from '../../src/events/contracts.js';
import { readStream } from '../../src/nats/stream-reader.js';
import { ORDERS_STREAM } from '../../src/nats/topology.js';
import { WireTally } from '../../src/orders/invariants.js';

/**
 * The harness's own ears on NATS, independent of orderflow's code and database: a core
 * subscription on `orders.>` and `metrics.orders`, started before any load, sees every message
 * published while it is connected, including ones a store wipe loses later. At check time the
 * ORDERS stream is read too, for what was stored while this connection was reconnecting; what a
 * read found stays counted, since a later store wipe takes an event off the stream, not off the
 * wire it was on (a nats-server restart's reconnect gap, then a wipe, lost such events from the
 * count and failed a check on an order that had been shipped once, as it should).
 */
export class WireWatch {
  private readonly seen: Envelope[] = [];
  private readonly ids = new Set<string>();
  /** Every event any read of the ORDERS stream found, by event id. */
  private readonly stored = new Map<string, Envelope>();
  /** Messages whose event id was seen before: republished or redelivered copies, not new events. */
  copies = 0;
  /** Messages that are not orderflow events (the poison scenario's garbage). */
  unparsed = 0;

  private constructor(readonly nc: NatsConnection) {}

  static async start(opts: ConnectionOptions): Promise<WireWatch> {
    const nc = await connect({ ...opts, name: 'faults-wire-watch', maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const watch = new WireWatch(nc);
    for (const subject of [ORDER_SUBJECTS_ALL, MetricEvents.orders.subject]) {
      nc.subscribe(subject, { callback: (err, m) => !err && watch.receive(m.subject, m.data) });
    }
    await nc.flush();
    return watch;
  }

  private receive(subject: string, data: Uint8Array): void {
    const parsed = parseEvent(subject, data);
    if (!parsed.ok) {
      this.unparsed++;
      return;
    }
    if (this.ids.has(parsed.event.event_id)) this.copies++;
    else this.ids.add(parsed.event.event_id);
    this.seen.push(parsed.event);
  }

  /** Every event seen on the core subscription or found by a read of the stream, tallied per order. */
  tally(): WireTally {
    const t = new WireTally();
    for (const e of this.seen) t.add(e);
    for (const e of this.stored.values()) t.add(e);
    return t;
  }

  /**
   * Every parsed event the ORDERS stream holds now (read without moving any durable consumer);
   * they count in `tally` from now on.
   */
  async readOrders(): Promise<Envelope[]> {
    const events: Envelope[] = [];
    const js = this.nc.jetstream();
    const jsm = await this.nc.jetstreamManager();
    for await (const m of readStream(js, jsm, { stream: ORDERS_STREAM, subject: ORDER_SUBJECTS_ALL })) {
      const parsed = parseEvent(m.subject, m.data);
      if (parsed.ok) events.push(parsed.event);
    }
    for (const e of events) this.stored.set(e.event_id, e);
    return events;
  }

  close(): Promise<void> {
    return this.nc.close();
  }
}
