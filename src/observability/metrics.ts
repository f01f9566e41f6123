import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every metric orderflow exports, defined once, in two registries:
 * - `registry`: what this process counts itself (counters, histograms, process metrics). Every
 *   process serves it at /metrics (the web app on its port, workers with --metrics-port).
 * - `systemRegistry`: the system-wide gauges (orders by status, consumer lag, dead letters,
 *   oldest unprocessed message), filled from the database and JetStream when scraped (gauges.ts).
 *   Only the web app serves them: a worker's copy would never be refreshed, and would report a
 *   stale 0 beside the web app's real figure.
 */
export const registry = new Registry();
export const systemRegistry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'orderflow_' });

export const httpDuration = new Histogram({
  name: 'orderflow_http_request_duration_seconds',
  help: 'HTTP request latency by method, route and status',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});

export const eventsPublished = new Counter({
  name: 'orderflow_events_published_total',
  help: 'Messages published to NATS by this process, by subject',
  labelNames: ['subject'] as const,
  registers: [registry],
});

export const eventsConsumed = new Counter({
  name: 'orderflow_events_consumed_total',
  help: 'Messages handled by this process, by consumer, subject and outcome (ack, retry, dead_letter)',
  labelNames: ['consumer', 'subject', 'outcome'] as const,
  registers: [registry],
});

export const paymentDuration = new Histogram({
  name: 'orderflow_payment_request_duration_seconds',
  help: 'payments.validate request/reply latency by outcome (approved, declined, unavailable)',
  labelNames: ['outcome'] as const,
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
  registers: [registry],
});

export const paymentRepliesRejected = new Counter({
  name: 'orderflow_payment_replies_rejected_total',
  help: 'payments.validate replies refused because they do not answer the request (order_mismatch, amount_mismatch)',
  labelNames: ['reason'] as const,
  registers: [registry],
});

/** payments.validate requests the payment responder answered, by outcome (the responder's side; the web app times the round trip). */
export const paymentRequestsHandled = new Counter({
  name: 'orderflow_payment_requests_handled_total',
  help: 'payments.validate requests this payment responder handled, by outcome (approved, declined, rejected)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

/** What the reconciler re-drove, by action: it counts its own work like every other process. */
export const reconciled = new Counter({
  name: 'orderflow_reconciled_total',
  help: 'Orders the reconciler re-drove, by action (payment_retried, fulfilment_requeued)',
  labelNames: ['action'] as const,
  registers: [registry],
});

export const ordersByStatus = new Gauge({
  name: 'orderflow_orders',
  help: 'Orders by status (from the database)',
  labelNames: ['status'] as const,
  registers: [systemRegistry],
});
export const consumerPending = new Gauge({
  name: 'orderflow_consumer_pending',
  help: 'Messages not yet delivered to a consumer (its lag)',
  labelNames: ['stream', 'consumer'] as const,
  registers: [systemRegistry],
});
export const consumerAckPending = new Gauge({
  name: 'orderflow_consumer_ack_pending',
  help: 'Messages delivered to a consumer and not yet acknowledged',
  labelNames: ['stream', 'consumer'] as const,
  registers: [systemRegistry],
});
export const deadLetters = new Gauge({ name: 'orderflow_dead_letters', help: 'Messages in the DLQ stream', registers: [systemRegistry] });
export const oldestUnprocessed = new Gauge({
  name: 'orderflow_oldest_unprocessed_seconds',
  help: 'Age of the oldest message not yet processed: unpublished outbox rows, and each consumer’s next pending message',
  labelNames: ['source'] as const,
  registers: [systemRegistry],
});
