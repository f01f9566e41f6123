import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every metric orderflow exports, defined once. Each process has its own registry and serves it
 * at /metrics (the web app on its port, workers with --metrics-port). Counters and histograms
 * are per process; the system-wide gauges (orders by status, consumer lag, dead letters, oldest
 * unprocessed message) are filled from the database and JetStream when scraped (see gauges.ts).
 */
export const registry = new Registry();
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

export const ordersByStatus = new Gauge({ name: 'orderflow_orders', help: 'Orders by status (from the database)', labelNames: ['status'] as const, registers: [registry] });
export const consumerPending = new Gauge({
  name: 'orderflow_consumer_pending',
  help: 'Messages not yet delivered to a consumer (its lag)',
  labelNames: ['stream', 'consumer'] as const,
  registers: [registry],
});
export const consumerAckPending = new Gauge({
  name: 'orderflow_consumer_ack_pending',
  help: 'Messages delivered to a consumer and not yet acknowledged',
  labelNames: ['stream', 'consumer'] as const,
  registers: [registry],
});
export const deadLetters = new Gauge({ name: 'orderflow_dead_letters', help: 'Messages in the DLQ stream', registers: [registry] });
export const oldestUnprocessed = new Gauge({
  name: 'orderflow_oldest_unprocessed_seconds',
  help: 'Age of the oldest message not yet processed: unpublished outbox rows, and each consumer’s next pending message',
  labelNames: ['source'] as const,
  registers: [registry],
});
