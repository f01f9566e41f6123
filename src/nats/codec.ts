import { headers as natsHeaders, type MsgHdrs } from 'nats';
import { Headers, type Envelope } from '../events/envelope.js';

const encoder = new TextEncoder();

export const encodeJson = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));

/** Headers let `nats sub` users and our own consumers see type and correlation without parsing JSON. */
export function eventHeaders(event: Envelope): MsgHdrs {
  const h = natsHeaders();
  h.set(Headers.EventType, event.type);
  h.set(Headers.EventVersion, String(event.version));
  h.set(Headers.CorrelationId, event.correlation_id);
  return h;
}

export function correlationHeaders(correlationId: string): MsgHdrs {
  const h = natsHeaders();
  h.set(Headers.CorrelationId, correlationId);
  return h;
}
