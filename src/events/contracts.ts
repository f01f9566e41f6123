import { z } from 'zod';
import { createEvent, defineEvent, describeZodError, envelopeSchema, type Causation, type Envelope, type EventDefinition } from './envelope.js';

/**
 * The one place that names orderflow's subjects and what travels on them.
 * Publishers and subscribers import from here; no other module spells a subject.
 */

export const orderStatus = z.enum(['created', 'payment_pending', 'paid', 'payment_declined', 'shipped']);
export type OrderStatus = z.infer<typeof orderStatus>;

const orderId = z.string().min(1).max(64);
const amountCents = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const OrderEvents = {
  created: defineEvent({
    subject: 'orders.created',
    version: 1,
    description: 'An order was accepted and recorded.',
    data: z.object({
      order_id: orderId,
      reference: z.string(),
      customer_email: z.email(),
      amount_cents: amountCents,
      currency: z.string().length(3),
    }),
  }),
  paid: defineEvent({
    subject: 'orders.paid',
    version: 1,
    description: 'The payment service approved the order.',
    data: z.object({ order_id: orderId, reference: z.string(), amount_cents: amountCents, transaction_id: z.string() }),
  }),
  declined: defineEvent({
    subject: 'orders.declined',
    version: 1,
    description: 'The payment service declined the order.',
    data: z.object({ order_id: orderId, reference: z.string(), amount_cents: amountCents, reason: z.string() }),
  }),
  shipped: defineEvent({
    subject: 'orders.shipped',
    version: 1,
    description: 'Fulfilment marked the order shipped.',
    data: z.object({ order_id: orderId, reference: z.string(), shipped_at: z.iso.datetime({ offset: true }) }),
  }),
} as const;

export const MetricEvents = {
  orders: defineEvent({
    subject: 'metrics.orders',
    version: 1,
    description: 'Analytics: one order moved through the pipeline (published on the analytics connection).',
    data: z.object({
      event: z.literal('order.shipped'),
      order_id: orderId,
      amount_cents: amountCents,
      // created → shipped, from the order's own timestamps.
      lead_time_ms: z.number().int().nonnegative(),
      at: z.iso.datetime({ offset: true }),
    }),
  }),
} as const;

/** Every event orderflow publishes, by subject. */
export const eventsBySubject: ReadonlyMap<string, EventDefinition> = new Map(
  [...Object.values(OrderEvents), ...Object.values(MetricEvents)].map((d) => [d.subject, d as EventDefinition]),
);

/** Subjects of the ORDERS stream and of the wildcard activity subscriber. */
export const ORDER_SUBJECTS_ALL = 'orders.>';
export const ORDER_SUBJECTS_WILDCARD = 'orders.*';

// ---- request/reply ---------------------------------------------------------------------------

export const PaymentsValidate = {
  subject: 'payments.validate',
  /** Several responders share the load in this queue group. */
  queueGroup: 'payments',
  request: z.object({ order_id: orderId, reference: z.string().optional(), amount_cents: amountCents, currency: z.string().length(3).default('USD') }),
  /** The reply names the order and amount it answers: the requester accepts it only when both match what it asked. */
  reply: z.object({
    approved: z.boolean(),
    transaction_id: z.string().nullable(),
    order_id: orderId,
    amount_cents: amountCents,
    reason: z.string().optional(),
  }),
} as const;
export type PaymentRequest = z.input<typeof PaymentsValidate.request>;
export type PaymentReply = z.infer<typeof PaymentsValidate.reply>;

// ---- operations -------------------------------------------------------------------------------

/**
 * Every orderflow process says it is alive on orderflow.heartbeat.<its name> (core NATS), for the
 * dashboard. The name is in the subject so that NATS permissions decide who may claim it: each
 * identity may publish only its own (see nats/auth/permissions.ts), and the dashboard ignores a
 * beat whose body names someone else.
 */
export const WorkerHeartbeat = {
  subjects: 'orderflow.heartbeat.*',
  subjectFor: (name: string) => `orderflow.heartbeat.${name}`,
  everyMs: 5000,
  schema: z.object({
    /** The kind (web, payments, …): the subject's last token, all its identity may claim. */
    name: z.string().min(1).max(50),
    /**
     * Which copy (`payments-2`): copies of a kind share its identity and subject, so this is their
     * word, not NATS's. Absent in beats of older versions: the kind's name.
     */
    instance: z.string().min(1).max(64).optional(),
    pid: z.number().int().positive(),
    host: z.string().max(255),
    started_at: z.iso.datetime({ offset: true }),
    at: z.iso.datetime({ offset: true }),
    // A process that stops cleanly sends one last beat with state "stopped", so the dashboard can
    // tell a clean stop from a process that went silent. Absent in beats of older versions.
    state: z.enum(['running', 'stopped']).optional(),
  }),
} as const;
export type Heartbeat = z.infer<typeof WorkerHeartbeat.schema>;

// ---- parsing incoming events ------------------------------------------------------------------

export type ParsedEvent =
  | { ok: true; event: Envelope; definition: EventDefinition }
  | { ok: false; error: string };

/** Anything bigger is not one of our messages (ours are well under 1 KiB): rejected before parsing. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** Parses bytes received on `subject` into a validated envelope; never throws. */
export function parseEvent(subject: string, bytes: Uint8Array): ParsedEvent {
  if (bytes.length > MAX_MESSAGE_BYTES) return { ok: false, error: `payload is larger than ${MAX_MESSAGE_BYTES} bytes` };
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return { ok: false, error: 'payload is not JSON' };
  }
  const envelope = envelopeSchema.safeParse(json);
  if (!envelope.success) return { ok: false, error: `bad envelope: ${describeZodError(envelope.error)}` };
  const definition = eventsBySubject.get(subject);
  if (!definition) return { ok: false, error: `no contract for subject ${subject}` };
  if (envelope.data.type !== definition.subject) {
    return { ok: false, error: `type ${envelope.data.type} published on ${subject}` };
  }
  if (envelope.data.version !== definition.version) {
    return { ok: false, error: `unsupported version ${envelope.data.version} of ${subject}` };
  }
  const data = definition.data.safeParse(envelope.data.data);
  if (!data.success) return { ok: false, error: `bad ${subject} data: ${describeZodError(data.error)}` };
  return { ok: true, event: { ...envelope.data, data: data.data }, definition };
}

export { createEvent, describeZodError, type Causation, type Envelope, type EventDefinition };
