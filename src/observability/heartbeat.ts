import { hostname } from 'node:os';
import { WorkerHeartbeat, type Heartbeat } from '../events/contracts.js';
import { encodeJson } from '../nats/codec.js';
import type { Runtime } from '../runtime/context.js';

/**
 * Publishes "I am alive" every few seconds (core NATS; a missed beat is simply not seen), and on a
 * clean stop a last beat saying "stopped" (it leaves with the connection's drain).
 */
export function startHeartbeat(rt: Runtime): { stop(): void } {
  const startedAt = new Date().toISOString();
  const beat = (state: Heartbeat['state']) => {
    const hb: Heartbeat = { name: rt.name, instance: rt.instance, pid: process.pid, host: hostname(), started_at: startedAt, at: new Date().toISOString(), state };
    if (!rt.nats.default.isClosed()) rt.nats.default.publish(WorkerHeartbeat.subjectFor(rt.name), encodeJson(hb));
  };
  beat('running');
  const timer = setInterval(() => beat('running'), WorkerHeartbeat.everyMs);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      beat('stopped');
    },
  };
}
