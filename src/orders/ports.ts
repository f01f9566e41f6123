import type { Causation, Envelope, PaymentReply, PaymentRequest } from '../events/contracts.js';
import type { OutboxMessage } from '../outbox/outbox.js';

/**
 * What the order domain needs from the outside world. The NATS implementations live in
 * src/nats and src/outbox; the domain never imports them.
 */
export interface EventPublisher {
  /** Resolves once the event is stored (JetStream ack) or delivered to the connection. */
  publish(event: Envelope): Promise<void>;
}

export type PaymentOutcome =
  | { kind: 'reply'; reply: PaymentReply }
  | { kind: 'unavailable'; error: string };

export interface PaymentGateway {
  validate(request: PaymentRequest, cause: Causation): Promise<PaymentOutcome>;
}


/** Publishes outbox messages that have just been committed (the fast path; a sweep catches the rest). */
export interface OutboxPublisher {
  publish(messages: OutboxMessage[]): Promise<boolean>;
}
