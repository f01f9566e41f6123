import type { z } from 'zod';
import { describeZodError } from './envelope.js';

/** Anything bigger is not one of our messages (ours are well under 1 KiB): rejected before parsing. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** What a decoder gives: the value, or one line saying what is wrong (for a log line, a dead letter, a reply). */
export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

const text = new TextDecoder();

/**
 * The one way bytes from NATS become a typed value: bounded in size, parsed as JSON, validated by
 * `schema`; never throws. `what` names the bytes in the error (`payload is not JSON`), `shape` what
 * the schema checks (`bad envelope: …`). A caller that consumes from a stream rejects the message
 * with `error` (the consumer loop logs it and dead-letters it); a responder answers it.
 */
export function decode<S extends z.ZodType>(schema: S, bytes: Uint8Array, what = 'message', shape = what): Decoded<z.output<S>> {
  if (bytes.length > MAX_MESSAGE_BYTES) return { ok: false, error: `${what} is larger than ${MAX_MESSAGE_BYTES} bytes` };
  let json: unknown;
  try {
    json = JSON.parse(text.decode(bytes));
  } catch {
    return { ok: false, error: `${what} is not JSON` };
  }
  const parsed = schema.safeParse(json);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, error: `bad ${shape}: ${describeZodError(parsed.error)}` };
}
