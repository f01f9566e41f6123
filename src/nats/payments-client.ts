import { ErrorCode, type Msg, type NatsConnection, type NatsError } from 'nats';
import type { Logger } from 'pino';
import { type Causation, type PaymentRequest, PaymentsValidate } from '../events/contracts.js';
import { decode } from '../events/decode.js';
import { paymentDuration, paymentRepliesRejected } from '../observability/metrics.js';
import type { PaymentGateway, PaymentOutcome } from '../orders/ports.js';
import { correlationHeaders, encodeJson } from './codec.js';
import { isConnected } from './connections.js';

/**
 * payments.validate over NATS request/reply; every failure becomes an `unavailable` outcome, never
 * a throw (the order waits as payment_pending and the reconciler asks again).
 * When the connection drops while a request waits (its node died), the request is given up at
 * once rather than after the whole timeout: the reply, if any, was sent to the node that is gone.
 */
export class NatsPaymentGateway implements PaymentGateway {
  /** Gives up each waiting request; called when the connection drops. */
  private readonly waiting = new Set<() => void>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
    private readonly log?: Logger,
  ) {
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'disconnect') for (const giveUp of this.waiting) giveUp();
    })().catch(() => undefined);
  }

  async validate(request: PaymentRequest, cause: Causation): Promise<PaymentOutcome> {
    const end = paymentDuration.startTimer();
    const outcome = await this.ask(request, cause);
    end({ outcome: outcome.kind === 'reply' ? (outcome.reply.approved ? 'approved' : 'declined') : 'unavailable' });
    return outcome;
  }

  private async ask(request: PaymentRequest, cause: Causation): Promise<PaymentOutcome> {
    if (!isConnected(this.nc)) return { kind: 'unavailable', error: 'NATS is unreachable' };
    const asked = PaymentsValidate.request.parse(request);
    let msg: Msg;
    let giveUp!: () => void;
    const lost = new Promise<'lost'>((resolve) => (giveUp = () => resolve('lost')));
    this.waiting.add(giveUp);
    try {
      const request = this.nc.request(PaymentsValidate.subject, encodeJson(asked), {
        timeout: this.timeoutMs,
        headers: correlationHeaders(cause.correlationId),
      });
      request.catch(() => undefined);
      const answer = await Promise.race([request, lost]);
      if (answer === 'lost') return { kind: 'unavailable', error: 'the NATS connection was lost while waiting for the payment service' };
      msg = answer;
    } catch (err) {
      const code = (err as NatsError).code;
      if (code === ErrorCode.NoResponders) return { kind: 'unavailable', error: 'no payment service is running: no responders on payments.validate' };
      if (code === ErrorCode.Timeout) return { kind: 'unavailable', error: `the payment service did not answer within ${this.timeoutMs} ms` };
      return { kind: 'unavailable', error: `payment request failed: ${(err as Error).message}` };
    } finally {
      this.waiting.delete(giveUp);
    }
    const serviceError = msg.headers?.get('Nats-Service-Error');
    if (serviceError) return { kind: 'unavailable', error: `payment service error: ${serviceError}` };
    const reply = decode(PaymentsValidate.reply, msg.data, 'payment service reply');
    if (!reply.ok) return { kind: 'unavailable', error: reply.error };
    // A reply is an answer about one order and one amount: anything else (a stale or forged
    // reply, a responder that mixed requests up) decides nothing, and the order waits for a retry.
    const mismatch =
      reply.value.order_id !== asked.order_id ? 'order_mismatch' : reply.value.amount_cents !== asked.amount_cents ? 'amount_mismatch' : undefined;
    if (mismatch) {
      paymentRepliesRejected.inc({ reason: mismatch });
      this.log?.warn(
        {
          order_id: asked.order_id,
          amount_cents: asked.amount_cents,
          reply_order_id: reply.value.order_id,
          reply_amount_cents: reply.value.amount_cents,
          correlation_id: cause.correlationId,
          reason: mismatch,
        },
        'payment reply refused: it does not answer the order asked about',
      );
      return {
        kind: 'unavailable',
        error: `payment reply refused (${mismatch.replace('_', ' ')}): it answers order ${reply.value.order_id} for ${reply.value.amount_cents} cents`,
      };
    }
    return { kind: 'reply', reply: reply.value };
  }
}
