import { MetricEvents, ORDER_SUBJECTS_ALL, ORDER_SUBJECTS_WILDCARD, OrderEvents, PaymentsValidate, WorkerHeartbeat } from '../../events/contracts.js';
import { delayedQueueSubjects, JOB_SUBJECT_PREFIX, Jobs, jobSubject, queueSubjects } from '../../events/jobs.js';
import { DLQ_STREAM, dlqSubject } from '../dead-letters.js';
import { ACTIVITY_CONSUMER, type ConsumerDefinition, FULFILLMENT_CONSUMER, FULFILLMENT_DELAY_CONSUMER, JOBS_STREAM, ORDERS_STREAM } from '../topology.js';

/**
 * Who may do what on NATS: one identity per kind of process, each allowed exactly the subjects its
 * code uses (read from src/workers, src/web, src/outbox, src/jobs, src/cli). The server enforces
 * it (nats-server `authorization`), so a process that is taken over, or a client that found the
 * port, can do no more than that process could.
 */
export const IDENTITY_KINDS = ['web', 'payments', 'activity', 'fulfillment', 'reconciler', 'setup', 'cli'] as const;
export type IdentityKind = (typeof IDENTITY_KINDS)[number];
export const isIdentityKind = (s: string): s is IdentityKind => (IDENTITY_KINDS as readonly string[]).includes(s);

export interface Permissions {
  publish: string[];
  subscribe: string[];
  /** May answer requests it received (on their reply subject, once), whatever `publish` says. */
  allowResponses: boolean;
}

/** Each identity's replies arrive under its own prefix, and only it may subscribe there. */
export const inboxPrefix = (kind: string) => `_INBOX_${kind}`;

const api = (s: string) => `$JS.API.${s}`;
/** Pull from one durable consumer and settle what it delivers. */
const consume = (c: ConsumerDefinition) => [
  api(`CONSUMER.INFO.${c.stream}.${c.config.durable_name}`),
  api(`CONSUMER.MSG.NEXT.${c.stream}.${c.config.durable_name}`),
  `$JS.ACK.${c.stream}.${c.config.durable_name}.>`,
];
/**
 * A worker re-creates its own stream and consumer after the server lost them (a wiped store):
 * CREATE only. Stream UPDATE, DELETE and PURGE stay with `setup`. (The consumer CREATE subject
 * also updates an existing consumer of that name; see ARCHITECTURE.md, "Security".)
 */
const recreate = (c: ConsumerDefinition) => [
  api(`STREAM.INFO.${c.stream}`),
  api(`STREAM.CREATE.${c.stream}`),
  // 2.9 uses the first, 2.10+ the second (with the filter subject); old servers the third.
  api(`CONSUMER.CREATE.${c.stream}.${c.config.durable_name}`),
  api(`CONSUMER.CREATE.${c.stream}.${c.config.durable_name}.>`),
  api(`CONSUMER.DURABLE.CREATE.${c.stream}.${c.config.durable_name}`),
];
const recreateDlq = [api(`STREAM.INFO.${DLQ_STREAM}`), api(`STREAM.CREATE.${DLQ_STREAM}`)];
const heartbeat = (kind: string) => WorkerHeartbeat.subjectFor(kind);
const own = (kind: string) => [`${inboxPrefix(kind)}.>`];
const ACCOUNT_INFO = api('INFO');
// What a NATS micro service listens on: `$SRV.<verb>`, `$SRV.<verb>.<name>`, `$SRV.<verb>.<name>.<id>`.
const srvDiscovery = (service: string) => ['PING', 'INFO', 'STATS', 'SCHEMA'].flatMap((v) => [`$SRV.${v}`, `$SRV.${v}.${service}`, `$SRV.${v}.${service}.*`]);

const { created, paid, declined, shipped } = OrderEvents;
const streamReads = (streams: string[]) =>
  streams.flatMap((s) => [api(`STREAM.INFO.${s}`), api(`CONSUMER.LIST.${s}`), api(`CONSUMER.INFO.${s}.*`), api(`STREAM.MSG.GET.${s}`)]);

export function permissionsFor(kind: IdentityKind): Permissions {
  const p = listed(kind);
  return { ...p, publish: [...new Set(p.publish)], subscribe: [...new Set(p.subscribe)] };
}

function listed(kind: IdentityKind): Permissions {
  switch (kind) {
    case 'web':
      return {
        publish: [
          // placeOrder and settlePayment (outbox fast path), the dashboard's job and demo tools.
          created.subject,
          paid.subject,
          declined.subject,
          jobSubject(Jobs.fulfillOrder),
          jobSubject(Jobs.demo),
          'demo.>',
          PaymentsValidate.subject,
          `$SRV.PING.${PaymentsValidate.queueGroup}`,
          heartbeat('web'),
          ACCOUNT_INFO,
          // The dashboard: streams, consumers, dead letters (and retrying one).
          ...streamReads([ORDERS_STREAM, JOBS_STREAM, DLQ_STREAM]),
          api(`STREAM.MSG.DELETE.${DLQ_STREAM}`),
        ],
        subscribe: [ORDER_SUBJECTS_WILDCARD, MetricEvents.orders.subject, WorkerHeartbeat.subjects, ...own('web')],
        allowResponses: false,
      };
    case 'payments':
      return {
        publish: [dlqSubject('payments'), heartbeat('payments'), ACCOUNT_INFO],
        subscribe: [PaymentsValidate.subject, ...srvDiscovery('payments'), ...own('payments')],
        allowResponses: true,
      };
    case 'activity':
      return {
        publish: [
          dlqSubject(ACTIVITY_CONSUMER.config.durable_name),
          dlqSubject('activity-live'),
          heartbeat('activity'),
          ACCOUNT_INFO,
          ...consume(ACTIVITY_CONSUMER),
          ...recreate(ACTIVITY_CONSUMER),
          ...recreateDlq,
        ],
        // --live: the plain core subscription.
        subscribe: [ORDER_SUBJECTS_WILDCARD, ...own('activity')],
        allowResponses: false,
      };
    case 'fulfillment':
      return {
        publish: [
          shipped.subject,
          MetricEvents.orders.subject,
          // Its own queue: a job not due yet moves to the delay lane and back when due.
          queueSubjects(Jobs.fulfillOrder.queue),
          delayedQueueSubjects(Jobs.fulfillOrder.queue),
          dlqSubject(FULFILLMENT_CONSUMER.config.durable_name),
          dlqSubject(FULFILLMENT_DELAY_CONSUMER.config.durable_name),
          heartbeat('fulfillment'),
          ACCOUNT_INFO,
          ...consume(FULFILLMENT_CONSUMER),
          ...consume(FULFILLMENT_DELAY_CONSUMER),
          ...recreate(FULFILLMENT_CONSUMER),
          ...recreate(FULFILLMENT_DELAY_CONSUMER),
          ...recreateDlq,
        ],
        subscribe: own('fulfillment'),
        allowResponses: false,
      };
    case 'reconciler':
      return {
        // Its outbox sweep publishes whatever rows any process left behind; it asks payments again.
        publish: [
          created.subject,
          paid.subject,
          declined.subject,
          shipped.subject,
          jobSubject(Jobs.fulfillOrder),
          PaymentsValidate.subject,
          heartbeat('reconciler'),
          ACCOUNT_INFO,
        ],
        subscribe: own('reconciler'),
        allowResponses: false,
      };
    case 'setup':
      // `orderflow setup` and an operator's JetStream administration (the NATS CLI with --nkey).
      // (Acks and flow control for the NATS CLI's `stream view` and friends.)
      return { publish: [api('>'), '$JS.ACK.>', '$JS.FC.>'], subscribe: own('setup'), allowResponses: true };
    case 'cli':
      return {
        publish: [
          ACCOUNT_INFO,
          api('STREAM.NAMES'),
          api('STREAM.LIST'),
          ...streamReads([ORDERS_STREAM, JOBS_STREAM, DLQ_STREAM]),
          // events tail/replay, projections rebuild: ephemeral consumers only (no name in the
          // subject), which the server removes 30 s after their last use.
          api(`CONSUMER.CREATE.${ORDERS_STREAM}`),
          api(`CONSUMER.MSG.NEXT.${ORDERS_STREAM}.*`),
          // dlq retry / purge: put a dead letter back where it came from.
          api(`STREAM.MSG.DELETE.${DLQ_STREAM}`),
          api(`STREAM.PURGE.${DLQ_STREAM}`),
          ORDER_SUBJECTS_ALL,
          `${JOB_SUBJECT_PREFIX}.>`,
          'replay.>',
          // A person with the NATS CLI: `nats req payments.validate …`, `nats micro ls`.
          PaymentsValidate.subject,
          '$SRV.>',
        ],
        // …and `nats sub 'orders.>'`, `nats sub metrics.orders` (what it can read from ORDERS anyway).
        subscribe: [ORDER_SUBJECTS_ALL, MetricEvents.orders.subject, ...own('cli')],
        allowResponses: false,
      };
  }
}

/** For the test suites only: their own client publishes malformed messages and listens everywhere. */
export const TEST_PERMISSIONS: Permissions = { publish: ['>'], subscribe: ['>'], allowResponses: true };
