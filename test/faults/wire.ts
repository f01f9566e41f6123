import { type ConnectionOptions, connect, type NatsConnection } from 'nats';
import { type Envelope, MetricEvents, ORDER_SUBJECTS_ALL, parseEvent } from '../../src/events/contracts.js';
import { readStream } from '../../src/nats/stream-reader.js';
import { ORDERS_STREAM } from '../../src/nats/topology.js';
import { WireTally } from '../../src/orders/invariants.js';

/**
 * The harness's own ears on NATS, independent of orderflow's code and database: a core
 * subscription on `orders.>` and `metrics.orders`, started before any load, sees every message
 * published while it is connected, including ones a store wipe loses later. At check time the
 * ORDERS stream is read too, for what was stored while this connection was reconnecting.
 */
export class WireWatch {
  private readonly seen: Envelope[] = [];
  private readonly ids = new Set<string>();
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

  /** Every event seen on the core subscription plus `stored` (what the stream holds), tallied per order. */
  tally(stored: Iterable<Envelope> = []): WireTally {
    const t = new WireTally();
    for (const e of this.seen) t.add(e);
    for (const e of stored) t.add(e);
    return t;
  }

  /** Every parsed event the ORDERS stream holds now (read without moving any durable consumer). */
  async readOrders(): Promise<Envelope[]> {
    const events: Envelope[] = [];
    const js = this.nc.jetstream();
    const jsm = await this.nc.jetstreamManager();
    for await (const m of readStream(js, jsm, { stream: ORDERS_STREAM, subject: ORDER_SUBJECTS_ALL })) {
      const parsed = parseEvent(m.subject, m.data);
      if (parsed.ok) events.push(parsed.event);
    }
    return events;
  }

  close(): Promise<void> {
    return this.nc.close();
  }
}
