import { connect, type NatsConnection } from 'nats';
import type { Logger } from 'pino';

/**
 * The PoC's two named connections (config/nats.php): `default` carries orders, payments and jobs;
 * `analytics` carries metrics.orders and may point at another cluster (NATS_ANALYTICS_URL).
 */
export interface NatsConnections {
  default: NatsConnection;
  analytics: NatsConnection;
}

export async function connectNats(
  name: string,
  urls: { default: string; analytics: string },
  log: Logger,
  opts: { waitOnFirstConnect?: boolean } = {},
): Promise<NatsConnections> {
  const nc = await open(`${name}`, urls.default, log, opts);
  try {
    const analytics = await open(`${name}:analytics`, urls.analytics, log.child({ connection: 'analytics' }), opts);
    return { default: nc, analytics };
  } catch (err) {
    await nc.close();
    throw err;
  }
}

async function open(name: string, url: string, log: Logger, opts: { waitOnFirstConnect?: boolean }) {
  const nc = await connect({
    servers: url,
    name: `orderflow:${name}`,
    // Keep trying for as long as the process lives: a worker outlives a nats-server restart.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    reconnectJitter: 250,
    waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
    pingInterval: 10_000,
    // Every request and JetStream publish would otherwise capture a stack trace up front, in
    // case it fails later (BaseRequest, ~3% of the web process's CPU in the profile). Errors
    // keep their messages.
    noAsyncTraces: true,
  });
  connected.set(nc, true);
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'pingTimer') continue;
      if (s.type === 'disconnect') connected.set(nc, false);
      if (s.type === 'reconnect') connected.set(nc, true);
      // One line per attempt (every half second while the server is away) would bury the rest.
      const level = s.type === 'disconnect' || s.type === 'error' ? 'warn' : s.type === 'reconnecting' ? 'debug' : 'info';
      log[level]({ nats_status: s.type, data: typeof s.data === 'string' ? s.data : undefined }, `nats ${s.type}`);
    }
  })();
  return nc;
}

const connected = new WeakMap<NatsConnection, boolean>();

/**
 * Whether the connection is up right now. Callers on a request path use it to fail fast (and let
 * the outbox sweep and the reconciler finish the work) instead of waiting out a timeout.
 */
export const isConnected = (nc: NatsConnection): boolean => !nc.isClosed() && connected.get(nc) !== false;

/**
 * Drains both connections (what was published is delivered, subscriptions finish) within
 * `withinMs`. A connection that is down is closed at once: a drain would wait for a reconnect
 * that may never come, and what it holds is safe anyway (the outbox and JetStream redeliver).
 */
export async function drainAll(conns: NatsConnections, withinMs = 2500): Promise<void> {
  await Promise.allSettled(
    [conns.default, conns.analytics].map(async (nc) => {
      if (nc.isClosed()) return;
      if (!isConnected(nc)) return nc.close();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), withinMs)));
      const r = await Promise.race([nc.drain().then(() => 'drained' as const), late]).catch(() => 'late' as const);
      clearTimeout(timer);
      if (r === 'late' && !nc.isClosed()) await nc.close();
    }),
  );
}
