import type { JetStreamClient } from 'nats';
import { loadConfig, type Config } from '../config/env.js';
import { createDb, type Db } from '../db/client.js';
import { createLogger, type Logger } from '../log/logger.js';
import { connectNats, drainAll, type NatsConnections } from '../nats/connections.js';

/** What every orderflow process holds: its config, logger, database and two NATS connections. */
export interface Runtime {
  name: string;
  config: Config;
  log: Logger;
  db: Db;
  nats: NatsConnections;
  js: JetStreamClient;
}

export async function createRuntime(name: string, config: Config = loadConfig()): Promise<Runtime> {
  const log = createLogger(name, config.LOG_LEVEL);
  const db = createDb(config.DATABASE_URL);
  let nats: NatsConnections;
  try {
    nats = await connectNats(name, { default: config.NATS_URL, analytics: config.NATS_ANALYTICS_URL }, log);
  } catch (err) {
    await db.$disconnect();
    throw new Error(`cannot connect to NATS at ${config.NATS_URL}: ${(err as Error).message}`);
  }
  return { name, config, log, db, nats, js: nats.default.jetstream() };
}

/** Drains both NATS connections (in-flight publishes and replies are delivered) and closes the database. */
export async function closeRuntime(rt: Runtime): Promise<void> {
  await drainAll(rt.nats);
  await rt.db.$disconnect();
}
