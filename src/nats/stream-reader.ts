import {
  AckPolicy,
  type ConsumerConfig,
  ConsumerEvents,
  type ConsumerInfo,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  nanos,
} from 'nats';

export interface ReadOptions {
  stream: string;
  subject: string;
  /** Start at this time (else at the first message). */
  from?: Date | undefined;
  /** Stop after messages stored later than this. */
  to?: Date | undefined;
}

/**
 * How often a read or a tail starts over after losing its consumer, before it gives up with an
 * error (a read that ended early without saying so would report a short replay as the whole).
 */
export const MAX_RESETS = 10;
const RESET_WAIT_MS = 500;

/**
 * Reads a stream from a point to its current end with an ephemeral, unacknowledged pull
 * consumer that the server forgets 30 s after the read: no durable consumer's position moves.
 * Used by replay, projections and the fault suite's wire count.
 *
 * On a cluster that consumer lives on one node (ephemerals are R1): if that node dies or the
 * stream's leader moves mid-read, a fetch comes back empty or fails although messages remain. The
 * read then starts a new consumer right after the last message it returned, as nats.js's ordered
 * consumer resets (whose fetch() never returns on 2.9 servers, and which creates named consumers
 * the `cli` identity may not), at most MAX_RESETS times, then throws rather than end short.
 */
export async function* readStream(js: JetStreamClient, jsm: JetStreamManager, opts: ReadOptions): AsyncGenerator<JsMsg> {
  const first: Partial<ConsumerConfig> = opts.from
    ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: opts.from.toISOString() }
    : { deliver_policy: DeliverPolicy.All };
  let lastSeq = 0;
  let lastError = '';
  for (let resets = 0; resets <= MAX_RESETS; resets++) {
    if (resets > 0) await new Promise((r) => setTimeout(r, RESET_WAIT_MS));
    let info: ConsumerInfo;
    try {
      info = await addEphemeral(jsm, opts.stream, opts.subject, lastSeq ? after(lastSeq) : first);
    } catch (err) {
      lastError = (err as Error).message;
      continue;
    }
    try {
      if (info.num_pending === 0) return;
      const consumer = await js.consumers.get(opts.stream, info.name);
      for (;;) {
        const batch = await consumer.fetch({ max_messages: 500, expires: 2000 });
        let got = 0;
        for await (const m of batch) {
          got++;
          lastSeq = m.seq;
          if (opts.to && m.info.timestampNanos / 1e6 > opts.to.getTime()) return;
          yield m;
          if (m.info.pending === 0) return;
        }
        // Messages remain (the last one said so, or the consumer did when made) yet none came:
        // the consumer was lost with its node, or is moving. Start over after the last one.
        if (got === 0) {
          lastError = `no messages from ${opts.stream} within 2 s although some remain`;
          break;
        }
      }
    } catch (err) {
      lastError = (err as Error).message;
    } finally {
      await jsm.consumers.delete(opts.stream, info.name).catch(() => undefined);
    }
  }
  throw new Error(`could not read ${opts.stream} to its end (${opts.subject}, after stream sequence ${lastSeq}): ${lastError}`);
}

/**
 * Follows a stream as messages are stored (`orderflow events tail`), until the caller stops
 * iterating. nats.js's consume() re-pulls by itself after missed heartbeats and reconnects, but
 * an ephemeral consumer that died with its node never comes back: the tail then starts a new one
 * right after the last message it returned (or where the first began), at most MAX_RESETS times
 * in a row without a message in between.
 */
export async function* followStream(
  js: JetStreamClient,
  jsm: JetStreamManager,
  opts: { stream: string; subject: string; all: boolean; signal?: AbortSignal },
): AsyncGenerator<JsMsg> {
  let from: number | undefined;
  let lastError = '';
  for (let resets = 0; resets <= MAX_RESETS; resets++) {
    if (resets > 0) await new Promise((r) => setTimeout(r, RESET_WAIT_MS));
    if (opts.signal?.aborted) return;
    let info: ConsumerInfo;
    try {
      info = await addEphemeral(
        jsm,
        opts.stream,
        opts.subject,
        from !== undefined ? after(from) : { deliver_policy: opts.all ? DeliverPolicy.All : DeliverPolicy.New },
      );
    } catch (err) {
      lastError = (err as Error).message;
      continue;
    }
    // With DeliverPolicy.New this is the stream's last sequence when the tail began.
    from ??= info.delivered.stream_seq;
    const messages = await (await js.consumers.get(opts.stream, info.name)).consume({ expires: 5000, idle_heartbeat: 1000 });
    const stop = () => messages.stop();
    opts.signal?.addEventListener('abort', stop, { once: true });
    void (async () => {
      for await (const s of await messages.status()) {
        if (s.type === ConsumerEvents.ConsumerNotFound || s.type === ConsumerEvents.StreamNotFound || s.type === ConsumerEvents.ConsumerDeleted) {
          lastError = `${s.type} (${String(s.data)})`;
          messages.stop();
          break;
        }
      }
    })().catch(() => undefined);
    try {
      for await (const m of messages) {
        from = m.seq;
        resets = 0;
        yield m;
      }
    } catch (err) {
      lastError = (err as Error).message;
    } finally {
      opts.signal?.removeEventListener('abort', stop);
      messages.stop();
      await jsm.consumers.delete(opts.stream, info.name).catch(() => undefined);
    }
    if (opts.signal?.aborted) return;
  }
  throw new Error(`lost the tail of ${opts.stream} (${opts.subject}) after stream sequence ${from ?? 0}: ${lastError}`);
}

const after = (seq: number): Partial<ConsumerConfig> => ({ deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: seq + 1 });

/** An ephemeral, unacknowledged pull consumer the server deletes 30 s after its last use. */
export function addEphemeral(jsm: JetStreamManager, stream: string, subject: string, start: Partial<ConsumerConfig>): Promise<ConsumerInfo> {
  return jsm.consumers.add(stream, { ack_policy: AckPolicy.None, filter_subject: subject, inactive_threshold: nanos(30_000), mem_storage: true, ...start });
}
