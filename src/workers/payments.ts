import type { Service } from 'nats';
import { describeZodError, PaymentsValidate } from '../events/contracts.js';
import { Headers } from '../events/envelope.js';
import { encodeJson } from '../nats/codec.js';
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
      let body: unknown;
      try {
        body = msg.json();
      } catch {
        log.warn({ correlation_id: correlationId }, 'rejected payments.validate request: not JSON');
        msg.respondError(400, 'request is not JSON');
        return;
      }
      const req = PaymentsValidate.request.safeParse(body);
      if (!req.success) {
        log.warn({ correlation_id: correlationId, error: describeZodError(req.error) }, 'rejected invalid payments.validate request');
        msg.respondError(400, `invalid request: ${describeZodError(req.error)}`);
        return;
      }
      const reply = decidePayment(req.data.order_id, req.data.amount_cents);
      msg.respond(encodeJson(reply));
      log.info(
        { order_id: reply.order_id, correlation_id: correlationId, approved: reply.approved, transaction_id: reply.transaction_id, reason: reply.reason },
        reply.approved ? 'payment approved' : 'payment declined',
      );
    },
  });
  log.info({ subject: PaymentsValidate.subject, queue: PaymentsValidate.queueGroup, id: service.info().id }, 'payment responder ready');
  return {
    service,
    async stop() {
      await service.stop();
    },
  };
}
