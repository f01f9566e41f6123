import { connect, ErrorCode, type NatsConnection, type NatsError } from 'nats';
import type { Logger } from 'pino';
import type { Config } from '../config/env.js';
import { type ConnectionName, connectionOptions, redactUrl, splitServers } from './auth/options.js';
import { CouldNotConnect, isPermissionsViolation } from './errors.js';

/**
 * The PoC's two named connections (config/nats.php): `default` carries orders, payments and jobs;
 * `analytics` carries metrics.orders and may point at another cluster (NATS_ANALYTICS_URL).
 */
export interface NatsConnections {
  default: NatsConnection;
  analytics: NatsConnection;
}

export interface OpenOptions {
  which?: ConnectionName;
  /** Shown by the server (connz) as orderflow:<name>. */
  name?: string;
  /** A long-lived process: reconnect for as long as it lives, and log status changes here. */
  log?: Logger;
  /** Reconnect for as long as the connection lives (implied by `log`; a test's client without one). */
  reconnect?: boolean;
  waitOnFirstConnect?: boolean;
  /** Connect timeout for one-shot commands (ms). */
  timeout?: number;
  /** No credentials, only the servers: to see whether anything answers there (`orderflow start`). */
  anonymous?: boolean;
}

/**
 * The one way orderflow opens a NATS connection: as identity `kind`, with the servers,
 * credentials and TLS its configuration gives (see auth/options.ts). A refused login becomes an
 * error that says what to do.
 */
export async function openNats(kind: string, config: Config, opts: OpenOptions = {}): Promise<NatsConnection> {
  const which = opts.which ?? 'default';
  const url = which === 'analytics' ? config.NATS_ANALYTICS_URL : config.NATS_URL;
  const base = opts.anonymous ? { servers: splitServers(url).servers } : connectionOptions(config, kind, which);
  const long = opts.reconnect ?? opts.log !== undefined;
  let nc: NatsConnection;
  try {
    nc = await connect({
      ...base,
      name: `orderflow:${opts.name ?? kind}`,
      // NATS_URL's servers in the order given (then those the cluster announces): which node a
      // process lands on is predictable, and after a node dies the client moves to the next one.
      noRandomize: true,
      ...(long
        ? {
            // Keep trying for as long as the process lives: a worker outlives a nats-server restart.
            maxReconnectAttempts: -1,
            reconnectTimeWait: 500,
            reconnectJitter: 250,
            waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
            pingInterval: 10_000,
          }
        : { timeout: opts.timeout ?? 5000, maxReconnectAttempts: 0, reconnect: false }),
      // Every request and JetStream publish would otherwise capture a stack trace up front, in
      // case it fails later (BaseRequest, ~3% of the web process's CPU in the profile). Errors
      // keep their messages.
      noAsyncTraces: true,
    });
  } catch (err) {
    if ((err as NatsError).code === ErrorCode.AuthorizationViolation && !opts.anonymous) {
      // The same code, a message that says what to do.
      throw Object.assign(
        new Error(
          `the NATS server at ${redactUrl(url)} refused identity "${kind}" (authorization violation): give this process its credential ` +
            `(NATS_NKEY_SEED_FILE, NATS_CREDS, NATS_USER/NATS_PASSWORD or NATS_TOKEN), or put its identity file where it looks ` +
            `(NATS_IDENTITIES_DIR, default DATA_DIR/nats-auth/identities; \`orderflow nats auth init\` writes them)`,
        ),
        { code: ErrorCode.AuthorizationViolation },
      );
    }
    if (err && typeof err === 'object') Object.assign(err, { [CouldNotConnect]: true });
    throw err;
  }
  if (long) watch(nc, opts.log, kind);
  return nc;
}

/** A permissions violation, said as what to check: which identity this process connected as. */
export function explainNatsError(err: Error, kind: string): Error {
  if (!isPermissionsViolation(err)) return err;
  return new Error(
    `${err.message.replace(/^'|'$/g, '')}: the NATS identity in use may not do this. This command runs as the "${kind}" identity: ` +
      `its seed is DATA_DIR/nats-auth/identities/${kind}.nk (or give it as NATS_NKEY_SEED_FILE); another identity's credential was given`,
  );
}

export async function connectNats(
  kind: string,
  config: Config,
  log: Logger,
  opts: { name?: string; waitOnFirstConnect?: boolean } = {},
): Promise<NatsConnections> {
  const nc = await openNats(kind, config, { ...opts, log });
  try {
    const analytics = await openNats(kind, config, {
      ...opts,
      which: 'analytics',
      name: `${opts.name ?? kind}:analytics`,
      log: log.child({ connection: 'analytics' }),
    });
    return { default: nc, analytics };
  } catch (err) {
    await nc.close();
    throw err;
  }
}

/** Which server a connection is on, for a log line: on a cluster, the node's name as well as its URL. */
export const serverOf = (nc: NatsConnection) => ({
  nats_server: nc.info?.server_name,
  nats_server_id: nc.info?.server_id,
  nats_url: nc.getServer(),
  nats_cluster: nc.info?.cluster,
});

function watch(nc: NatsConnection, log: Logger | undefined, kind: string): void {
  connected.set(nc, true);
  log?.info(serverOf(nc), `nats connected to ${nc.info?.server_name ?? nc.getServer()}`);
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'pingTimer') continue;
      // A denied publish or subscription: name it, so a missing permission is found from one line.
      const denied = (s as { permissionContext?: { operation: string; subject: string } }).permissionContext;
      if (denied) {
        log?.warn(
          { nats_status: s.type, identity: kind, operation: denied.operation, subject: denied.subject },
          `nats permission denied: identity ${kind} may not ${denied.operation} ${denied.subject}`,
        );
        continue;
      }
      if (s.type === 'disconnect') connected.set(nc, false);
      if (s.type === 'reconnect') {
        connected.set(nc, true);
        for (const fn of reconnectListeners.get(nc) ?? []) fn();
        log?.info(serverOf(nc), `nats reconnected to ${nc.info?.server_name ?? nc.getServer()}`);
        continue;
      }
      // One line per attempt (every half second while the server is away) would bury the rest.
      const level = s.type === 'disconnect' || s.type === 'error' ? 'warn' : s.type === 'reconnecting' ? 'debug' : 'info';
      log?.[level]({ nats_status: s.type, data: typeof s.data === 'string' ? s.data : undefined }, `nats ${s.type}`);
    }
  })();
}

const connected = new WeakMap<NatsConnection, boolean>();
const reconnectListeners = new WeakMap<NatsConnection, Set<() => void>>();

/**
 * Calls `fn` each time a process's connection (one opened with a `log`) is back after a
 * disconnect: what waited for NATS can go at once instead of on its retry timer. Returns the
 * function that stops it.
 */
export function onReconnect(nc: NatsConnection, fn: () => void): () => void {
  let set = reconnectListeners.get(nc);
  if (!set) reconnectListeners.set(nc, (set = new Set()));
  set.add(fn);
  return () => set.delete(fn);
}

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
