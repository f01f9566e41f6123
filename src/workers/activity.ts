import type { JsMsg, Subscription } from 'nats';
import { ORDER_SUBJECTS_WILDCARD, parseEvent } from '../events/contracts.js';
import { ACK, pullClient, runPullConsumer, type Verdict } from '../nats/consumer.js';
import { publishDeadLetter } from '../nats/dead-letters.js';
import { ACTIVITY_CONSUMER, recreateMissing, topologyOptions } from '../nats/topology.js';
import { eventsConsumed } from '../observability/metrics.js';
import { ActivityRecorder, activityRow } from '../orders/activity.js';
import type { Runtime } from '../runtime/context.js';

export const LIVE_CONSUMER_NAME = 'activity-live';

/**
 * Nobody waits on a timeline row, so the rows of this long share one unit of work and one commit
 * (each message is acked only after it). Every commit takes SQLite's one write lock that the web
 * app's intake needs too, and costs a BEGIN, a COMMIT and an fsync: at 300 orders/s (900 events)
 * 10 ms made ~90 commits a second of a handful of rows each, 50 ms makes ~20.
 */
export const ACTIVITY_COMMIT_WITHIN_MS = 50;
/**
 * Messages in hand at once: enough for every event of a commit window at the pipeline's target
 * (1,500 orders/s, 4,500 events/s × 50 ms ≈ 225), under the consumer's max_ack_pending (1,000).
 */
const ACTIVITY_CONCURRENCY = 512;

/**
 * The PoC's `nats:orders-subscriber`: every orders.* event goes to the console and nats_activities.
 * Durable by default (a JetStream consumer, so nothing published while it was down is missed);
 * `live` is the plain core subscription, which sees only what happens while it runs.
 */
export function startActivityWorker(rt: Runtime, opts: { live?: boolean } = {}): { stop(): Promise<void> } {
  const log = rt.log.child({ worker: 'activity', mode: opts.live ? 'live' : 'durable' });
  const consumerName = opts.live ? LIVE_CONSUMER_NAME : ACTIVITY_CONSUMER.config.durable_name;
  const recorder = new ActivityRecorder(rt.storage, ACTIVITY_COMMIT_WITHIN_MS);

  const record = async (subject: string, data: Uint8Array): Promise<Verdict> => {
    const parsed = parseEvent(subject, data);
    if (!parsed.ok) return { reject: parsed.error };
    const { event } = parsed;
    const fresh = await recorder.record(activityRow(consumerName, subject, event));
    const d = event.data as { order_id?: string };
    log.info(
      { subject, event_id: event.event_id, order_id: d.order_id, correlation_id: event.correlation_id, duplicate: !fresh || undefined },
      `${subject} ${fresh ? '' : '(duplicate) '}recorded`,
    );
    return ACK;
  };

  if (opts.live) {
    const sub: Subscription = rt.nats.default.subscribe(ORDER_SUBJECTS_WILDCARD, {
      callback: (err, msg) => {
        if (err) return log.error({ err }, 'subscription error');
        record(msg.subject, msg.data)
          .then(async (v) => {
            eventsConsumed.inc({ consumer: LIVE_CONSUMER_NAME, subject: msg.subject, outcome: 'reject' in v ? 'dead_letter' : 'ack' });
            if (!('reject' in v)) return;
            log.warn({ subject: msg.subject, reason: v.reject }, 'bad message dead-lettered');
            await publishDeadLetter(rt.js, {
              consumer: LIVE_CONSUMER_NAME,
              subject: msg.subject,
              data: msg.data,
              headers: msg.headers,
              error: v.reject,
              deliveries: 1,
            });
          })
          .catch((e) => log.error({ err: e, subject: msg.subject }, 'could not record event'));
      },
    });
    log.info({ subject: ORDER_SUBJECTS_WILDCARD }, 'subscribed (live, core NATS)');
    return {
      async stop() {
        await sub.drain();
      },
    };
  }

  const running = runPullConsumer(pullClient(rt.nats.default), ACTIVITY_CONSUMER, (m: JsMsg) => record(m.subject, m.data), log, {
    maxDeliveries: rt.config.MAX_DELIVERIES,
    // Order does not matter here (the timeline sorts by occurred_at), and concurrent messages share a transaction.
    concurrency: ACTIVITY_CONCURRENCY,
    maxMessages: ACTIVITY_CONCURRENCY,
    // A wiped store: re-create the stream and this consumer (create only, see nats/auth).
    ensure: async () => {
      const created = await recreateMissing(await rt.nats.default.jetstreamManager(), topologyOptions(rt.config), [ACTIVITY_CONSUMER]);
      if (created.length) log.warn({ created }, 're-created what the NATS server had lost');
    },
  });
  return { stop: () => running.stop() };
}
