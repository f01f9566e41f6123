import type { Service } from 'nats';
import { PaymentsValidate } from '../events/contracts.js';
import { decode } from '../events/decode.js';
import { Headers } from '../events/envelope.js';
import { correlationHeaders, encodeJson } from '../nats/codec.js';
import { publishDeadLetter } from '../nats/dead-letters.js';
import { paymentRequestsHandled } from '../observability/metrics.js';
import { decidePayment } from '../payments/policy.js';
import type { Runtime } from '../runtime/context.js';

export const PAYMENTS_SERVICE = { name: 'payments', version: '1.0.0' } as const;

/**
 * The payment responder, as a NATS "micro" service: `nats micro ls` and $SRV.PING find it, and
 * every instance joins one queue group so several can share the load.
 */
export async function startPaymentResponder(rt: Runtime): Promise<{ service: Service; stop(): Promise<void> }> {
  const log = rt.log.child({ worker: 'payments' });
  const service = await rt.nats.default.services.add({
    name: PAYMENTS_SERVICE.name,
    version: PAYMENTS_SERVICE.version,
    description: 'Validates order payments (approves 0 < amount < 10,000.00)',
    queue: PaymentsValidate.queueGroup,
  });
  service.addEndpoint('validate', {
    subject: PaymentsValidate.subject,
    handler: (err, msg) => {
      if (err) {
        log.error({ err }, 'payments endpoint failed');
        return;
      }
      const correlationId = msg.headers?.get(Headers.CorrelationId) || undefined;
      const reject = (error: string) => {
        log.warn({ correlation_id: correlationId, error }, 'rejected payments.validate request');
        paymentRequestsHandled.inc({ outcome: 'rejected' });
        msg.respondError(400, error);
        publishDeadLetter(rt.js, { consumer: 'payments', subject: msg.subject, data: msg.data, headers: msg.headers, error, deliveries: 1 }).catch((e: Error) =>
          log.error({ err: e.message }, 'could not dead-letter a bad request'),
        );
      };
      const req = decode(PaymentsValidate.request, msg.data, 'request');
      if (!req.ok) return reject(req.error);
      const reply = decidePayment(req.value.order_id, req.value.amount_cents);
      // The reply carries the trace on to the requester.
      msg.respond(encodeJson(reply), correlationId ? { headers: correlationHeaders(correlationId) } : undefined);
      paymentRequestsHandled.inc({ outcome: reply.approved ? 'approved' : 'declined' });
      log.info(
        { order_id: reply.order_id, correlation_id: correlationId, approved: reply.approved, transaction_id: reply.transaction_id, reason: reply.reason },
        reply.approved ? 'payment approved' : 'payment declined',
      );
    },
  });
  // Ready means the server knows the subscription: a request sent after this line finds us.
  await rt.nats.default.flush();
  log.info({ subject: PaymentsValidate.subject, queue: PaymentsValidate.queueGroup, id: service.info().id }, 'payment responder ready');
  return {
    service,
    async stop() {
      await service.stop();
    },
  };
}
