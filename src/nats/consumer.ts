import type { ConsumerMessages, JetStreamClient, JsMsg } from 'nats';
import type { Logger } from 'pino';
import type { ConsumerDefinition } from './topology.js';

/** What a handler decides about one message. Throwing means "retry later". */
export type Verdict = { ack: true } | { retryInMs: number } | { reject: string };
export const ACK: Verdict = { ack: true };

export interface RunningConsumer {
  /** Stops pulling, lets the message in hand finish, and resolves when the loop has ended. */
  stop(): Promise<void>;
  /** Messages handled so far (any verdict). */
  readonly handled: number;
}

/** Retry delays for a handler that threw: 0.5 s, 1 s, 2 s … capped at 30 s. */
export const backoffMs = (deliveryCount: number) => Math.min(30_000, 500 * 2 ** Math.max(0, deliveryCount - 1));

/**
 * Runs a durable pull consumer until stopped. Messages are handled one at a time, in order.
 * If the pull loop ends for any reason other than stop() (consumer deleted, server restarted
 * with an empty store, a long disconnect), it looks the consumer up again and resumes, so the
 * worker never silently stops consuming.
 */
export function runPullConsumer(
  js: JetStreamClient,
  def: ConsumerDefinition,
  handle: (msg: JsMsg) => Promise<Verdict>,
  log: Logger,
  opts: { maxMessages?: number } = {},
): RunningConsumer {
  let stopping = false;
  let messages: ConsumerMessages | undefined;
  let handled = 0;
  const name = def.config.durable_name;

  const processOne = async (m: JsMsg) => {
    let verdict: Verdict;
    try {
      verdict = await handle(m);
    } catch (err) {
      const delay = backoffMs(m.info.deliveryCount);
      log.error({ err, subject: m.subject, seq: m.seq, delivery: m.info.deliveryCount, retry_in_ms: delay }, 'handler failed; will retry');
      verdict = { retryInMs: delay };
    }
    if ('ack' in verdict) m.ack();
    else if ('retryInMs' in verdict) m.nak(verdict.retryInMs);
    else {
      log.error({ subject: m.subject, seq: m.seq, reason: verdict.reject }, 'message rejected');
      m.term();
    }
    handled++;
  };

  const loop = (async () => {
    while (!stopping) {
      try {
        const consumer = await js.consumers.get(def.stream, name);
        messages = await consumer.consume({ max_messages: opts.maxMessages ?? 256 });
        log.info({ stream: def.stream, consumer: name }, 'consuming');
        for await (const m of messages) {
          await processOne(m);
          if (stopping) break;
        }
      } catch (err) {
        if (stopping) break;
        log.warn({ err: (err as Error).message, stream: def.stream, consumer: name }, 'consumer unavailable; retrying in 1 s');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();

  return {
    get handled() {
      return handled;
    },
    async stop() {
      stopping = true;
      messages?.stop();
      await loop;
    },
  };
}
