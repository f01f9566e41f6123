import { AckPolicy, DeliverPolicy, nanos, type ConsumerConfig, type ConsumerInfo, type JetStreamClient, type JetStreamManager, type JsMsg } from 'nats';

export interface ReadOptions {
  stream: string;
  subject: string;
  /** Start at this time (else at the first message). */
  from?: Date | undefined;
  /** Stop after messages stored later than this. */
  to?: Date | undefined;
}

/**
 * Reads a stream from a point to its current end with an ephemeral, unacknowledged pull
 * consumer that the server forgets 30 s after the read: no durable consumer's position moves.
 * (nats.js's ordered consumer does the same job, but its fetch() never returns on 2.9 servers.)
 * Used by replay and projections.
 */
export async function* readStream(js: JetStreamClient, jsm: JetStreamManager, opts: ReadOptions): AsyncGenerator<JsMsg> {
  const info = await addEphemeral(jsm, opts.stream, opts.subject, opts.from ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: opts.from.toISOString() } : { deliver_policy: DeliverPolicy.All });
  try {
    if (info.num_pending === 0) return;
    const consumer = await js.consumers.get(opts.stream, info.name);
    for (;;) {
      const batch = await consumer.fetch({ max_messages: 500, expires: 2000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        if (opts.to && m.info.timestampNanos / 1e6 > opts.to.getTime()) return;
        yield m;
        if (m.info.pending === 0) return;
      }
      if (got === 0) return;
    }
  } finally {
    await jsm.consumers.delete(opts.stream, info.name).catch(() => undefined);
  }
}

/** An ephemeral, unacknowledged pull consumer the server deletes 30 s after its last use. */
export function addEphemeral(jsm: JetStreamManager, stream: string, subject: string, start: Partial<ConsumerConfig>): Promise<ConsumerInfo> {
  return jsm.consumers.add(stream, { ack_policy: AckPolicy.None, filter_subject: subject, inactive_threshold: nanos(30_000), mem_storage: true, ...start });
}
