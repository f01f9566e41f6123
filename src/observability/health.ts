import { isConnected } from '../nats/connections.js';
import type { Runtime } from '../runtime/context.js';

type Checks = { database: string; nats: string; jetstream: string };

export interface Readiness {
  ready: boolean;
  /** What anyone may see: `ok`, or which part is away, without addresses or error texts. */
  checks: Checks;
  /** The causes (they name hosts, ports and databases): for operators and the log only. */
  details: Checks;
}

const ok = 'ok';
/** The last causes logged, per runtime: a cause is logged once when it appears, not on every probe. */
const logged = new WeakMap<Runtime, string>();

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
  const details = { database, nats, jetstream };
  const ready = database === ok && nats === ok && jetstream === ok;
  const key = JSON.stringify(details);
  if (logged.get(rt) !== key) {
    logged.set(rt, key);
    if (!ready) rt.log.warn({ checks: details }, 'not ready');
  }
  return {
    ready,
    checks: { database: database === ok ? ok : 'unavailable', nats, jetstream: jetstream === ok ? ok : 'unavailable' },
    details,
  };
}

/** /ready's answer to someone who is not an operator. */
export const publicReadiness = ({ ready, checks }: Readiness) => ({ ready, checks });

/** /health: the process is alive and its event loop turns. */
export const health = (name: string) => ({ status: 'ok', process: name, pid: process.pid, uptime_s: Math.round(process.uptime()) });
