import { type MsgHdrs, headers as natsHeaders } from 'nats';
import { correlationHeaderRecord, type Envelope, eventHeaderRecord } from '../events/envelope.js';

const encoder = new TextEncoder();

export const encodeJson = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));

export function toMsgHdrs(record: Record<string, string>): MsgHdrs {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(record)) h.set(k, v);
  return h;
}

/** Headers let `nats sub` users and our own consumers see type and correlation without parsing JSON. */
export const eventHeaders = (event: Envelope): MsgHdrs => toMsgHdrs(eventHeaderRecord(event));

export const correlationHeaders = (correlationId: string): MsgHdrs => toMsgHdrs(correlationHeaderRecord(correlationId));
