import { ConsumerEvents, type ConsumerMessages, type JetStreamClient, type JsMsg } from 'nats';
import type { Logger } from 'pino';
import { StorageUnavailableError } from '../orders/errors.js';
import { eventsConsumed } from '../observability/metrics.js';
import { publishDeadLetter } from './dead-letters.js';
import type { ConsumerDefinition } from './topology.js';

/** What a handler decides about one message. Throwing means "failed: retry with backoff". */
export type Verdict = { ack: true } | { retryInMs: number } | { reject: string };
export const ACK: Verdict = { ack: true };

export interface RunningConsumer {
  /** Stops pulling, lets the message in hand finish, and resolves when the loop has ended. */
  stop(): Promise<void>;
  /** Messages handled so far (any verdict). */
  readonly handled: number;
}

export interface ConsumerOptions {
  /** Failed deliveries before a message goes to the dead letters (MAX_DELIVERIES). */
  maxDeliveries: number;
  /** Which attempt this delivery is; defaults to the server's delivery count. */
  attemptOf?: (m: JsMsg) => number;
  /** Re-creates the stream and consumer when the server no longer has them (e.g. a wiped store). */
  ensure?: () => Promise<void>;
  maxMessages?: number;
  /** Messages handled at once (default 1: one at a time, in order). */
  concurrency?: number;
}

/** How often a message held while the database is away is tried again (it answers: at once). */
const STORAGE_RETRY_MS = [250, 500, 1000, 2000];

/** Retry delays for a handler that threw: 0.5 s, 1 s, 2 s … capped at 30 s. */
export const backoffMs = (attempt: number) => Math.min(30_000, 500 * 2 ** Math.max(0, attempt - 1));

// Statuses after which the pull will not recover by itself: look the consumer up (and re-create it) again.
const LOST = new Set<string>([ConsumerEvents.ConsumerNotFound, ConsumerEvents.StreamNotFound, ConsumerEvents.ConsumerDeleted, ConsumerEvents.NoResponders]);

/**
 * Runs a durable pull consumer until stopped, one message at a time, in order.
 * A handler that throws is retried with exponential backoff (nak with delay); after
 * `maxDeliveries` attempts, or at once when the handler rejects the message as unparseable, the
 * message goes to the DLQ stream and is terminated. If the pull loop ends for any reason other
 * than stop() — consumer deleted, server restarted with an empty store — it re-creates the
 * consumer and resumes, so a worker never silently stops consuming (a known nats.js trap).
 */
export function runPullConsumer(js: JetStreamClient, def: ConsumerDefinition, handle: (msg: JsMsg) => Promise<Verdict>, log: Logger, opts: ConsumerOptions): RunningConsumer {
  let stopping = false;
  let messages: ConsumerMessages | undefined;
  let handled = 0;
  const name = def.config.durable_name;
  const attemptOf = opts.attemptOf ?? ((m: JsMsg) => m.info.deliveryCount);

  const deadLetter = async (m: JsMsg, error: string, attempt: number) => {
    await publishDeadLetter(js, { consumer: name, subject: m.subject, data: m.data, headers: m.headers, error, deliveries: attempt, stream: def.stream, streamSeq: m.seq });
    m.term();
    eventsConsumed.inc({ consumer: name, subject: m.subject, outcome: 'dead_letter' });
    log.error({ subject: m.subject, seq: m.seq, deliveries: attempt, error }, 'message dead-lettered');
  };

  // The database being away is not the message's fault: rather than spend its deliveries on the
  // way to the dead letters, hold it (delivery count unchanged, ack deadline extended) and try
  // again until the database answers; meanwhile the loop pulls nothing more (its slots are taken),
  // and it resumes at full speed the moment the database is back. Stopping hands it back (nak).
  let holding = 0;
  const handleOrHold = async (m: JsMsg): Promise<Verdict> => {
    for (let tries = 0; ; tries++) {
      try {
        const verdict = await handle(m);
        if (tries > 0 && --holding === 0) log.info({ stream: def.stream, consumer: name }, 'database answers again; consuming');
        return verdict;
      } catch (err) {
        if (!(err instanceof StorageUnavailableError)) {
          if (tries > 0) holding--;
          throw err;
        }
        if (tries === 0 && holding++ === 0) log.warn({ err: err.message, stream: def.stream, consumer: name }, 'database unavailable; holding messages and pausing until it answers');
        if (stopping) {
          holding--;
          return { retryInMs: 1000 };
        }
        await new Promise((r) => setTimeout(r, STORAGE_RETRY_MS[Math.min(tries, STORAGE_RETRY_MS.length - 1)]));
        m.working();
      }
    }
  };

  const processOne = async (m: JsMsg) => {
    const attempt = attemptOf(m);
    let verdict: Verdict;
    try {
      verdict = await handleOrHold(m);
    } catch (err) {
      const error = (err as Error).message ?? String(err);
      if (attempt >= opts.maxDeliveries) return deadLetter(m, error, attempt);
      const delay = backoffMs(attempt);
      log.warn({ err, subject: m.subject, seq: m.seq, attempt, retry_in_ms: delay }, 'handler failed; will retry');
      verdict = { retryInMs: delay };
    }
    if ('ack' in verdict) {
      m.ack();
      eventsConsumed.inc({ consumer: name, subject: m.subject, outcome: 'ack' });
    } else if ('retryInMs' in verdict) {
      m.nak(verdict.retryInMs);
      eventsConsumed.inc({ consumer: name, subject: m.subject, outcome: 'retry' });
    } else await deadLetter(m, verdict.reject, attempt);
  };

  const loop = (async () => {
    let lookups = 0;
    while (!stopping) {
      try {
        if (lookups++ > 0 && opts.ensure) await opts.ensure();
        const consumer = await js.consumers.get(def.stream, name);
        // A 10 s pull expiry (5 s idle heartbeat) bounds how long a pull lost in a server restart can stall us.
        messages = await consumer.consume({ max_messages: opts.maxMessages ?? 256, expires: 10_000 });
        const current = messages;
        void (async () => {
          for await (const s of await current.status()) {
            if (LOST.has(s.type)) {
              log.warn({ status: s.type, stream: def.stream, consumer: name }, 'consumer lost; re-creating');
              current.stop();
              break;
            }
          }
        })().catch(() => undefined);
        log.info({ stream: def.stream, consumer: name }, 'consuming');
        const inflight = new Set<Promise<void>>();
        for await (const m of current) {
          const p: Promise<void> = processOne(m)
            .catch((err: unknown) => {
              // Publishing the dead letter failed (NATS away): leave the message unacked for redelivery.
              log.error({ err, subject: m.subject, seq: m.seq }, 'could not settle message; it will be redelivered');
            })
            .finally(() => {
              inflight.delete(p);
              handled++;
            });
          inflight.add(p);
          if (inflight.size >= (opts.concurrency ?? 1)) await Promise.race(inflight);
          if (stopping) break;
        }
        await Promise.all(inflight);
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
