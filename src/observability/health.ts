import type { Runtime } from '../runtime/context.js';
import { isConnected } from '../nats/connections.js';

export interface Readiness {
  ready: boolean;
  checks: { database: string; nats: string; jetstream: string };
}

const ok = 'ok';

/** /ready: can this process do its work right now (database, NATS and JetStream reachable)? */
export async function readiness(rt: Runtime): Promise<Readiness> {
  const [database, jetstream] = await Promise.all([
    rt.storage
      .ping()
      .then(() => ok)
      .catch((e: Error) => e.message),
    // Skipped while disconnected: a JetStream request would only wait out its timeout.
    !isConnected(rt.nats.default)
      ? Promise.resolve('NATS is disconnected')
      : rt.nats.default
      .jetstreamManager()
      .then((jsm) => jsm.getAccountInfo())
      .then(() => ok)
      .catch((e: Error) => e.message),
  ]);
  const nats = isConnected(rt.nats.default) && isConnected(rt.nats.analytics) ? ok : 'disconnected';
  return { ready: database === ok && nats === ok && jetstream === ok, checks: { database, nats, jetstream } };
}

/** /health: the process is alive and its event loop turns. */
export const health = (name: string) => ({ status: 'ok', process: name, pid: process.pid, uptime_s: Math.round(process.uptime()) });
