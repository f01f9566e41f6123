import { join } from 'node:path';
import { connect, ErrorCode, type NatsError } from 'nats';
import type { Config } from '../../config/env.js';
import { defaultAuthDir, ensureNatsAuth } from '../../nats/auth/identities.js';
import { redactUrl, splitServers } from '../../nats/auth/options.js';
import { startNatsCluster } from '../../nats/cluster.js';
import { natsServerAvailable, NATS_INSTALL_HINT, startNatsServer } from '../../nats/server-process.js';

/**
 * The NATS that `orderflow start` runs itself when nothing answers at NATS_URL: one
 * `nats-server -js` (NATS_EMBEDDED=auto), or a three-node loopback cluster with R3 streams
 * (NATS_EMBEDDED=cluster). Either runs with the generated authorization and under the watchdog
 * (nats/watchdog.sh): no node outlives the supervisor, however it dies.
 */
export interface EmbeddedNats {
  /** What setup and every child must see instead of the configured values (NATS_URL, replicas). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export const CLUSTER_SIZE = 3;

async function natsAnswers(url: string): Promise<boolean> {
  try {
    const nc = await connect({ servers: splitServers(url).servers, timeout: 1000, maxReconnectAttempts: 0, reconnect: false });
    await nc.close();
    return true;
  } catch (err) {
    // A server with authorization answers an anonymous probe with a refusal.
    return (err as NatsError).code === ErrorCode.AuthorizationViolation;
  }
}

/** Undefined when a NATS server already answers (it is used as it is). Exits 1 with one line when none may or can be started. */
export async function ensureNats(config: Config, say: (line: string) => void): Promise<EmbeddedNats | undefined> {
  if (await natsAnswers(config.NATS_URL)) {
    say(`using the NATS server at ${redactUrl(config.NATS_URL)}`);
    return undefined;
  }
  if (config.NATS_EMBEDDED === 'never') {
    process.stderr.write(`orderflow start: nothing answers at NATS_URL=${redactUrl(config.NATS_URL)} (and NATS_EMBEDDED=never)\n`);
    process.exit(1);
  }
  if (!natsServerAvailable()) {
    process.stderr.write(`orderflow start: ${NATS_INSTALL_HINT}\n`);
    process.exit(1);
  }
  const urls = splitServers(config.NATS_URL).servers.map((s) => new URL(s.replace(/^nats:/, 'http:')));
  const host = urls[0]!.hostname;
  // Authorization on: every process connects as its own identity (generated on first start).
  const auth = ensureNatsAuth(defaultAuthDir(config));

  if (config.NATS_EMBEDDED !== 'cluster') {
    // watchParent: it stops when we do, even if we are SIGKILLed (see nats/watchdog.sh).
    const server = await startNatsServer({ host, port: Number(urls[0]!.port || 4222), storeDir: join(config.DATA_DIR, 'nats'), configFile: auth.serverConfig, watchParent: true });
    say(`started nats-server -js at ${server.url} (store ${server.storeDir}, log ${join(config.DATA_DIR, 'nats-server.log')}, pid ${server.pid}; authorization ${auth.serverConfig})`);
    return { env: {}, stop: () => server.stop() };
  }

  // The client ports: the three NATS_URL lists, or its one port and the next two.
  const first = Number(urls[0]!.port || 4222);
  const ports = urls.length === CLUSTER_SIZE ? urls.map((u) => Number(u.port || 4222)) : Array.from({ length: CLUSTER_SIZE }, (_, i) => first + i);
  const dir = join(config.DATA_DIR, 'nats-cluster');
  const cluster = await startNatsCluster({ dir, size: CLUSTER_SIZE, host, ports, configFile: auth.serverConfig, watchParent: true }).catch((err: Error) => {
    process.stderr.write(`orderflow start: the NATS cluster did not start: ${err.message.split('\n')[0]} (logs: ${dir}/<node>.log)\n`);
    process.exit(1);
  });
  try {
    await cluster.waitForMetaLeader();
  } catch (err) {
    await cluster.stop();
    process.stderr.write(`orderflow start: ${(err as Error).message} (logs: ${dir}/<node>.log)\n`);
    process.exit(1);
  }
  // R3 on a three-node cluster, unless another count was asked for (1 is the default, not a choice).
  const replicas = config.NATS_STREAM_REPLICAS === 1 ? CLUSTER_SIZE : config.NATS_STREAM_REPLICAS;
  const nodes = cluster.nodes.map((n) => `${n.name} ${n.url} (pid ${n.process?.pid})`).join(', ');
  say(`started a ${CLUSTER_SIZE}-node nats-server cluster "${cluster.name}": ${nodes}; streams R${replicas}; stores and logs in ${dir}; authorization ${auth.serverConfig}`);
  return { env: { NATS_URL: cluster.urls, NATS_STREAM_REPLICAS: String(replicas) }, stop: () => cluster.stop() };
}
