import { ConsumerDebugEvents, ConsumerEvents, type ConsumerMessages, type JetStreamClient, type JsMsg, type NatsConnection } from 'nats';
import type { Logger } from 'pino';
import { eventsConsumed } from '../observability/metrics.js';
import { StorageUnavailableError } from '../orders/errors.js';
import { type Backoff, retryDelay } from '../retry/backoff.js';
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

/** Retry delays for a handler that threw: 0.5 s, 1 s, 2 s … capped at 30 s (nak with delay). */
export const HANDLER_RETRY: Backoff = { firstMs: 500, maxMs: 30_000 };

/** How often a message held while the database is away is tried again (it answers: at once). */
const STORAGE_RETRY: Backoff = { firstMs: 250, maxMs: 2000 };

// Statuses after which the pull will not recover by itself: look the consumer up (and re-create it) again.
const LOST = new Set<string>([ConsumerEvents.ConsumerNotFound, ConsumerEvents.StreamNotFound, ConsumerEvents.ConsumerDeleted, ConsumerEvents.NoResponders]);

/**
 * How long one pull waits on the server, and how often the server says it still holds it while
 * there is nothing to deliver. A pull lives on the consumer's leader: when that node dies or the
 * leadership moves, the pull is gone without a word, and only the missing heartbeats tell.
 * nats.js's consume() notices two missed beats (2–3 s), looks the consumer up and pulls again,
 * retrying the look-up every 1–3 s (half to 1.5 × `expires`) while the cluster has no leader for
 * it. So a lost pull stalls a consumer about 3 s past the moment a new leader answers. An idle
 * consumer costs one pull every 2 s and one heartbeat a second. See ARCHITECTURE.md, "Leader
 * changes and reconnects".
 */
export const PULL_EXPIRES_MS = 2000;
export const PULL_IDLE_HEARTBEAT_MS = 1000;
/**
 * The JetStream API timeout for a consumer's own requests (the look-up after missed beats, and
 * dead letters). While a consumer has no leader its info request is answered by nobody and waits
 * out the whole timeout (nats.js's default 5 s), so a new leader is found up to 5 s late; 2 s
 * keeps that short and is still ample for an API call that normally takes milliseconds.
 */
export const PULL_API_TIMEOUT_MS = 2000;

/** The JetStream client a pull consumer should run on (see PULL_API_TIMEOUT_MS). */
export const pullClient = (nc: NatsConnection): JetStreamClient => nc.jetstream({ timeout: PULL_API_TIMEOUT_MS });

/**
 * Runs a durable pull consumer until stopped, one message at a time, in order.
 * A handler that throws is retried with exponential backoff (nak with delay); after
 * `maxDeliveries` attempts, or at once when the handler rejects the message as unparseable, the
 * message goes to the DLQ stream and is terminated. If the pull loop ends for any reason other
 * than stop() — consumer deleted, server restarted with an empty store — it re-creates the
 * consumer and resumes, so a worker never silently stops consuming (a known nats.js trap).
 */
export function runPullConsumer(
  js: JetStreamClient,
  def: ConsumerDefinition,
  handle: (msg: JsMsg) => Promise<Verdict>,
  log: Logger,
  opts: ConsumerOptions,
): RunningConsumer {
  let stopping = false;
  let messages: ConsumerMessages | undefined;
  let handled = 0;
  const name = def.config.durable_name;
  const attemptOf = opts.attemptOf ?? ((m: JsMsg) => m.info.deliveryCount);

  const deadLetter = async (m: JsMsg, error: string, attempt: number) => {
    await publishDeadLetter(js, {
      consumer: name,
      subject: m.subject,
      data: m.data,
      headers: m.headers,
      error,
      deliveries: attempt,
      stream: def.stream,
      streamSeq: m.seq,
    });
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
        if (tries === 0 && holding++ === 0)
          log.warn({ err: err.message, stream: def.stream, consumer: name }, 'database unavailable; holding messages and pausing until it answers');
        if (stopping) {
          holding--;
          return { retryInMs: 1000 };
        }
        await new Promise((r) => setTimeout(r, retryDelay(STORAGE_RETRY, tries + 1)));
        m.working();
      }
    }
  };

  const processOne = async (m: JsMsg) => {
    let verdict: Verdict;
    try {
      verdict = await handleOrHold(m);
    } catch (err) {
      const error = (err as Error).message ?? String(err);
      // Which attempt this was matters only when it failed: most deliveries never parse their reply subject.
      const attempt = attemptOf(m);
      if (attempt >= opts.maxDeliveries) return deadLetter(m, error, attempt);
      const delay = retryDelay(HANDLER_RETRY, attempt);
      log.warn({ err, subject: m.subject, seq: m.seq, attempt, retry_in_ms: delay }, 'handler failed; will retry');
      verdict = { retryInMs: delay };
    }
    if ('ack' in verdict) {
      m.ack();
      eventsConsumed.inc({ consumer: name, subject: m.subject, outcome: 'ack' });
    } else if ('retryInMs' in verdict) {
      m.nak(verdict.retryInMs);
      eventsConsumed.inc({ consumer: name, subject: m.subject, outcome: 'retry' });
    } else await deadLetter(m, verdict.reject, attemptOf(m));
  };

  const loop = (async () => {
    let lookups = 0;
    while (!stopping) {
      try {
        if (lookups++ > 0 && opts.ensure) await opts.ensure();
        const consumer = await js.consumers.get(def.stream, name);
        messages = await consumer.consume({ max_messages: opts.maxMessages ?? 256, expires: PULL_EXPIRES_MS, idle_heartbeat: PULL_IDLE_HEARTBEAT_MS });
        const current = messages;
        void (async () => {
          let missing = false;
          for await (const s of await current.status()) {
            if (LOST.has(s.type)) {
              log.warn({ status: s.type, stream: def.stream, consumer: name }, 'consumer lost; re-creating');
              current.stop();
              break;
            }
            // Said once per episode: nats.js re-pulls by itself (each beat interval while it lasts).
            if (s.type === ConsumerEvents.HeartbeatsMissed && !missing) {
              missing = true;
              log.warn({ stream: def.stream, consumer: name, missed: s.data }, 'pull heartbeats missed (consumer leader gone or moving?); pulling again');
            } else if (s.type === ConsumerDebugEvents.Next && missing) {
              missing = false;
              log.info({ stream: def.stream, consumer: name }, 'pulling again');
            }
          }
        })().catch(() => undefined);
        log.info({ stream: def.stream, consumer: name }, 'consuming');
        // A count of messages in hand and one waiter, rather than racing every in-flight promise
        // for each message (which made each delivery cost as much as the slots in use).
        const slots = opts.concurrency ?? 1;
        let inflight = 0;
        let freed: (() => void) | undefined;
        const settled = () => {
          inflight--;
          handled++;
          freed?.();
        };
        for await (const m of current) {
          inflight++;
          processOne(m)
            .catch((err: unknown) => {
              // Publishing the dead letter failed (NATS away): leave the message unacked for redelivery.
              log.error({ err, subject: m.subject, seq: m.seq }, 'could not settle message; it will be redelivered');
            })
            .then(settled);
          while (inflight >= slots) await new Promise<void>((r) => (freed = r));
          freed = undefined;
          if (stopping) break;
        }
        while (inflight > 0) await new Promise<void>((r) => (freed = r));
        freed = undefined;
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
