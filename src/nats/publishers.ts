import type { JetStreamClient, NatsConnection } from 'nats';
import type { Envelope } from '../events/envelope.js';
import type { EventPublisher } from '../orders/ports.js';
import { eventsPublished } from '../observability/metrics.js';
import { encodeJson, eventHeaders } from './codec.js';

/**
 * Publishes into JetStream and waits for the stream's ack. The event id is the Nats-Msg-Id, so a
 * re-publish of the same event within the stream's duplicate window is stored once.
 */
export class JetStreamPublisher implements EventPublisher {
  constructor(private readonly js: JetStreamClient) {}

  async publish(event: Envelope): Promise<void> {
    await this.js.publish(event.type, encodeJson(event), { msgID: event.event_id, headers: eventHeaders(event) });
    eventsPublished.inc({ subject: event.type });
  }
}

/** Core NATS publish (fire and forget, as metrics are). */
export class CorePublisher implements EventPublisher {
  constructor(private readonly nc: NatsConnection) {}

  async publish(event: Envelope): Promise<void> {
    // No flush: core NATS is at-most-once anyway, and a round trip per metric would only add latency.
    this.nc.publish(event.type, encodeJson(event), { headers: eventHeaders(event) });
    eventsPublished.inc({ subject: event.type });
  }
}
