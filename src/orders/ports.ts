import type { z } from 'zod';
import type { Causation, Envelope, PaymentReply, PaymentRequest } from '../events/contracts.js';
import type { JobDefinition } from '../events/jobs.js';

/**
 * What the order domain needs from the outside world. The NATS implementations live in
 * src/nats and src/jobs; the domain never imports them.
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

export interface DispatchOptions {
  correlationId: string;
  /** Run no earlier than this many milliseconds from now. */
  delayMs?: number;
}

export interface JobDispatcher {
  dispatch<S extends z.ZodType>(job: JobDefinition<S>, payload: z.input<S>, options: DispatchOptions): Promise<string>;
}
