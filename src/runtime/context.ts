import type { JetStreamClient } from 'nats';
import { loadConfig, type Config } from '../config/env.js';
import { createLogger, type Logger } from '../log/logger.js';
import { connectNats, drainAll, isConnected, type NatsConnections } from '../nats/connections.js';
import { redactUrl } from '../nats/auth/options.js';
import { NatsPaymentGateway } from '../nats/payments-client.js';
import type { PlaceOrderDeps } from '../orders/place-order.js';
import type { Storage } from '../orders/ports.js';
import { OutboxRelay } from '../outbox/relay.js';
import { openStorage, storageOptions } from '../storage/open.js';
import { bounded } from './shutdown.js';

/** What every orderflow process holds: its config, logger, database and two NATS connections. */
export interface Runtime {
  /** The kind of process (`web`, `payments`, …): its NATS identity's and its heartbeat subject's name. */
  name: string;
  /**
   * This copy's name (`payments-2` under `orderflow start --scale payments=2`; the kind when it runs
   * once): in its logs, its NATS connection name (connz) and its heartbeat.
   */
  instance: string;
  config: Config;
  log: Logger;
  /** The flows' unit of work and every read (pages, dashboard, scans), on DATABASE_URL's adapter. */
  storage: Storage;
  nats: NatsConnections;
  js: JetStreamClient;
  /** Publishes this process's committed outbox rows; its sweep runs only where start() is called. */
  outbox: OutboxRelay;
}

/**
 * `identity` is the NATS identity the process connects as (see nats/auth); by default its name:
 * `orderflow web` is `web`, `orderflow worker payments` is `payments`. Copies of one kind share it;
 * `instance` tells them apart.
 */
export async function createRuntime(name: string, config: Config = loadConfig(), identity: string = name, instance: string = name): Promise<Runtime> {
  const log = createLogger(instance, config.LOG_LEVEL, config.ORDERFLOW_PRETTY);
  const storage = await openStorage(config.DATABASE_URL, storageOptions(config, instance));
  let nats: NatsConnections;
  try {
    nats = await connectNats(identity, config, log, { name: instance });
  } catch (err) {
    await storage.close();
    throw new Error(`cannot connect to NATS at ${redactUrl(config.NATS_URL)}: ${(err as Error).message}`);
  }
  const js = nats.default.jetstream();
  const outbox = new OutboxRelay(storage, js, log.child({ component: 'outbox' }), {}, () => isConnected(nats.default));
  return {
    name,
    instance,
    config,
    log,
    storage,
    nats,
    js,
    outbox,
  };
}

/** Drains both NATS connections (in-flight publishes and replies are delivered) and closes the database. */
export async function closeRuntime(rt: Runtime): Promise<void> {
  await bounded('outbox relay stop', rt.outbox.stop(), 1000, rt.log);
  await drainAll(rt.nats, 2500);
  await rt.storage.close();
}

/** What the order flows need, wired to this process's database, outbox and NATS connection. */
export function orderDeps(rt: Runtime): PlaceOrderDeps {
  return {
    storage: rt.storage,
    outbox: rt.outbox,
    payments: new NatsPaymentGateway(rt.nats.default, rt.config.PAYMENT_TIMEOUT_MS, rt.log.child({ component: 'payments-client' })),
    log: rt.log,
    paymentRetryBaseMs: rt.config.PAYMENT_RETRY_BASE_MS,
  };
}
