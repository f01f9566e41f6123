import type { JetStreamClient, MsgHdrs, NatsConnection, PubAck } from 'nats';
import type { Envelope } from '../events/envelope.js';
import { eventsPublished } from '../observability/metrics.js';
import type { EventPublisher } from '../orders/ports.js';
import type { OutboxMessage } from '../outbox/outbox.js';
import { encodeJson, eventHeaders, toMsgHdrs } from './codec.js';

const encoder = new TextEncoder();

/** A message for a stream: an outbox row, or bytes already on the wire (a job moved to its delay lane, a dead letter, one retried). */
export interface StreamMessage {
  /** The Nats-Msg-Id: a second publish of the same id within the stream's duplicate window is stored once (none: every copy is stored). */
  id: string | undefined;
  subject: string;
  payload: string | Uint8Array;
  headers: Record<string, string> | MsgHdrs;
}

/**
 * The one way orderflow puts a message into JetStream and waits for the stream's ack: the outbox
 * relay publishes every event and job row with it (the fast path and the sweep); the job worker
 * moves jobs to and from the delay lane, consumers dead-letter, operators retry dead letters and
 * inject from the dashboard with it too. An outbox message is one as it stands.
 */
export async function publishToStream(js: JetStreamClient, m: StreamMessage | OutboxMessage, timeoutMs = 3000): Promise<PubAck> {
  return js.publish(m.subject, typeof m.payload === 'string' ? encoder.encode(m.payload) : m.payload, {
    ...(m.id !== undefined ? { msgID: m.id } : {}),
    headers: isMsgHdrs(m.headers) ? m.headers : toMsgHdrs(m.headers),
    timeout: timeoutMs,
  });
}

const isMsgHdrs = (h: StreamMessage['headers']): h is MsgHdrs => typeof (h as MsgHdrs).get === 'function' && typeof (h as MsgHdrs).keys === 'function';

/** Core NATS publish (fire and forget, as metrics are): metrics.orders on the analytics connection. */
export class CorePublisher implements EventPublisher {
  constructor(private readonly nc: NatsConnection) {}

  async publish(event: Envelope): Promise<void> {
    // No flush: core NATS is at-most-once anyway, and a round trip per metric would only add latency.
    this.nc.publish(event.type, encodeJson(event), { headers: eventHeaders(event) });
    eventsPublished.inc({ subject: event.type });
  }
}
