import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  DiscardPolicy,
  ErrorCode,
  type JetStreamManager,
  type NatsError,
  nanos,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from 'nats';
import type { Config } from '../config/env.js';
import { ORDER_SUBJECTS_ALL, ORDER_SUBJECTS_WILDCARD } from '../events/contracts.js';
import { delayedQueueSubjects, JOB_SUBJECT_PREFIX, Jobs, queueSubjects } from '../events/jobs.js';
import { DLQ_STREAM, DLQ_SUBJECTS } from './dead-letters.js';
import { isJsError, JsErrCode, jsErrCode } from './errors.js';

/** Streams and durable consumers, defined in code and applied idempotently by `orderflow setup`. */
export const ORDERS_STREAM = 'ORDERS';
export const JOBS_STREAM = 'JOBS';

/** Every stream is bounded by age and bytes (see ARCHITECTURE.md, "Security"); the defaults are the config's. */
export interface TopologyOptions {
  ordersMaxAgeDays: number;
  ordersMaxBytes?: number;
  jobsMaxAgeDays?: number;
  jobsMaxBytes?: number;
  dlqMaxAgeDays?: number;
  dlqMaxBytes?: number;
  /** num_replicas of every stream: 1 on one server, 3 (or 5) on a cluster. */
  replicas?: number;
}

export const topologyOptions = (c: Config): Required<TopologyOptions> => ({
  ordersMaxAgeDays: c.ORDERS_STREAM_MAX_AGE_DAYS,
  ordersMaxBytes: c.ORDERS_STREAM_MAX_BYTES,
  jobsMaxAgeDays: c.JOBS_STREAM_MAX_AGE_DAYS,
  jobsMaxBytes: c.JOBS_STREAM_MAX_BYTES,
  dlqMaxAgeDays: c.DLQ_STREAM_MAX_AGE_DAYS,
  dlqMaxBytes: c.DLQ_STREAM_MAX_BYTES,
  replicas: c.NATS_STREAM_REPLICAS,
});

const DAY_MS = 24 * 3600 * 1000;
const MiB = 1024 ** 2;

export function streamConfigs(opts: TopologyOptions): Partial<StreamConfig>[] {
  return [
    {
      name: ORDERS_STREAM,
      description: 'Every order event (orders.>), kept for replay and for durable subscribers.',
      subjects: [ORDER_SUBJECTS_ALL],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      // Full: the oldest events go (the database keeps every order; replay reaches back less far).
      discard: DiscardPolicy.Old,
      max_age: nanos(opts.ordersMaxAgeDays * DAY_MS),
      max_bytes: opts.ordersMaxBytes ?? 4096 * MiB,
      // Publishes carry Nats-Msg-Id = event id; a retry inside this window is stored once.
      duplicate_window: nanos(2 * 60 * 1000),
      num_replicas: opts.replicas ?? 1,
    },
    {
      name: JOBS_STREAM,
      description: 'Job queue (jobs.<queue>.<job>): each job is removed once a worker acks it.',
      subjects: [`${JOB_SUBJECT_PREFIX}.>`],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      // Full: a new job is refused (its outbox row waits and is retried) rather than an old one
      // dropped. Older than max_age: gone; the reconciler re-queues fulfilment of paid orders.
      discard: DiscardPolicy.New,
      max_age: nanos((opts.jobsMaxAgeDays ?? 7) * DAY_MS),
      max_bytes: opts.jobsMaxBytes ?? 256 * MiB,
      duplicate_window: nanos(2 * 60 * 1000),
      num_replicas: opts.replicas ?? 1,
    },
    {
      name: DLQ_STREAM,
      description: 'Dead letters (dlq.<consumer>): messages a consumer gave up on, kept for inspection and retry.',
      subjects: [DLQ_SUBJECTS],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      // Full: the oldest dead letters go, so a burst of failures never stops a consumer from
      // dead-lettering (a refused dead letter would leave its message to be redelivered forever).
      discard: DiscardPolicy.Old,
      max_age: nanos((opts.dlqMaxAgeDays ?? 30) * DAY_MS),
      max_bytes: opts.dlqMaxBytes ?? 256 * MiB,
      duplicate_window: nanos(2 * 60 * 1000),
      num_replicas: opts.replicas ?? 1,
    },
  ];
}

export interface ConsumerDefinition {
  stream: string;
  config: Partial<ConsumerConfig> & { durable_name: string };
}

export const ACTIVITY_CONSUMER: ConsumerDefinition = {
  stream: ORDERS_STREAM,
  config: {
    durable_name: 'activity',
    description: 'orderflow worker activity: records every orders.* event in nats_activities',
    filter_subject: ORDER_SUBJECTS_WILDCARD,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(30_000),
    max_ack_pending: 1000,
  },
};

export const jobQueueConsumer = (queue: string): ConsumerDefinition => ({
  stream: JOBS_STREAM,
  config: {
    durable_name: `jobs-${queue}`,
    description: `orderflow job worker for queue "${queue}"`,
    filter_subject: queueSubjects(queue),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(30_000),
    max_ack_pending: 1000,
  },
});

/**
 * Where a queue's jobs that are not due yet wait (see events/jobs.ts). Each waits here as one
 * nak(delay) in ack-pending, hence the larger bound; a flood beyond it delays only delayed jobs.
 */
export const jobDelayConsumer = (queue: string): ConsumerDefinition => ({
  stream: JOBS_STREAM,
  config: {
    durable_name: `jobs-delayed-${queue}`,
    description: `orderflow delay lane for queue "${queue}": jobs wait here until due`,
    filter_subject: delayedQueueSubjects(queue),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(30_000),
    max_ack_pending: 50_000,
  },
});

export const FULFILLMENT_CONSUMER = jobQueueConsumer(Jobs.fulfillOrder.queue);
export const FULFILLMENT_DELAY_CONSUMER = jobDelayConsumer(Jobs.fulfillOrder.queue);

export const consumerDefinitions = (): ConsumerDefinition[] => [ACTIVITY_CONSUMER, FULFILLMENT_CONSUMER, FULFILLMENT_DELAY_CONSUMER];

export interface TopologyReport {
  streams: { name: string; action: 'created' | 'updated' | 'unchanged' }[];
  consumers: { stream: string; name: string; action: 'created' | 'updated' | 'unchanged' }[];
}

/**
 * Runs a JetStream API call again, for up to `timeoutMs`, while the cluster it asks is settling:
 * refused with "no suitable peers for placement" (10005) or unanswered (TIMEOUT). A nats-server
 * 2.10 cluster whose meta group has just formed does both for a moment (measured on 2.10.27: 4 of
 * 150 fresh three-node clusters refused an R3 stream for up to 1.3 s with every node up, and one
 * left the request unanswered for its 5 s timeout; 2.9.10 did neither in 150). A node that is
 * really down is still refused after `timeoutMs`. Only for calls that may be repeated: info, and
 * creates and updates with the same config.
 */
export async function whileClusterSettles<T>(call: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      const settling = jsErrCode(err) === JsErrCode.ClusterNoPeers || (err as NatsError).code === ErrorCode.Timeout;
      if (!settling || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Creates what is missing and updates what drifted; safe to run on every start. */
export async function ensureTopology(jsm: JetStreamManager, opts: TopologyOptions): Promise<TopologyReport> {
  const report: TopologyReport = { streams: [], consumers: [] };
  for (const cfg of streamConfigs(opts)) {
    const name = cfg.name!;
    const existing = await whileClusterSettles(() =>
      jsm.streams.info(name).catch((err: Error) => {
        if (isJsError(err, JsErrCode.StreamNotFound)) return null;
        throw err;
      }),
    );
    if (!existing) {
      await whileClusterSettles(() => jsm.streams.add(cfg));
      report.streams.push({ name, action: 'created' });
    } else if (differs(cfg, existing.config)) {
      await whileClusterSettles(() => jsm.streams.update(name, cfg));
      report.streams.push({ name, action: 'updated' });
    } else {
      report.streams.push({ name, action: 'unchanged' });
    }
  }
  for (const def of consumerDefinitions()) {
    const name = def.config.durable_name;
    const existing = await whileClusterSettles(() =>
      jsm.consumers.info(def.stream, name).catch((err: Error) => {
        if (isJsError(err, JsErrCode.ConsumerNotFound)) return null;
        throw err;
      }),
    );
    if (!existing) {
      await whileClusterSettles(() => jsm.consumers.add(def.stream, def.config));
      report.consumers.push({ stream: def.stream, name, action: 'created' });
    } else if (differs(def.config, existing.config)) {
      await whileClusterSettles(() => jsm.consumers.update(def.stream, name, def.config));
      report.consumers.push({ stream: def.stream, name, action: 'updated' });
    } else {
      report.consumers.push({ stream: def.stream, name, action: 'unchanged' });
    }
  }
  return report;
}

/**
 * What a worker does when the server lost its stream or consumer (a wiped store): creates what is
 * missing, never updates or deletes (its NATS identity may not; `orderflow setup` may).
 */
export async function recreateMissing(jsm: JetStreamManager, opts: TopologyOptions, consumers: ConsumerDefinition[]): Promise<string[]> {
  const created: string[] = [];
  const wanted = new Set([...consumers.map((c) => c.stream), DLQ_STREAM]);
  for (const cfg of streamConfigs(opts).filter((s) => wanted.has(s.name!))) {
    const missing = await jsm.streams.info(cfg.name!).then(
      () => false,
      (err: Error) => {
        if (isJsError(err, JsErrCode.StreamNotFound)) return true;
        throw err;
      },
    );
    if (missing) {
      await jsm.streams.add(cfg);
      created.push(`stream ${cfg.name}`);
    }
  }
  for (const def of consumers) {
    const missing = await jsm.consumers.info(def.stream, def.config.durable_name).then(
      () => false,
      (err: Error) => {
        if (isJsError(err, JsErrCode.ConsumerNotFound)) return true;
        throw err;
      },
    );
    if (missing) {
      await jsm.consumers.add(def.stream, def.config);
      created.push(`consumer ${def.stream}/${def.config.durable_name}`);
    }
  }
  return created;
}

function differs(wanted: object, actual: object): boolean {
  const a = actual as Record<string, unknown>;
  return Object.entries(wanted).some(([k, v]) => JSON.stringify(a[k]) !== JSON.stringify(v));
}
