import { hostname } from 'node:os';
import { WorkerHeartbeat, type Heartbeat } from '../events/contracts.js';
import { encodeJson } from '../nats/codec.js';
import type { Runtime } from '../runtime/context.js';

/** Publishes "I am alive" every few seconds (core NATS; a missed beat is simply not seen). */
export function startHeartbeat(rt: Runtime): { stop(): void } {
  const startedAt = new Date().toISOString();
  const beat = () => {
    const hb: Heartbeat = { name: rt.name, pid: process.pid, host: hostname(), started_at: startedAt, at: new Date().toISOString() };
    if (!rt.nats.default.isClosed()) rt.nats.default.publish(WorkerHeartbeat.subjectFor(rt.name), encodeJson(hb));
  };
  beat();
  const timer = setInterval(beat, WorkerHeartbeat.everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
