import type { Config } from '../../config/env.js';
import { explainNatsError, openNats } from '../../nats/connections.js';
import { ensureTopology, type TopologyReport, topologyOptions } from '../../nats/topology.js';
import { type MigrationResult, migrateStorage, storageOptions } from '../../storage/open.js';

export interface SetupReport {
  migrations: MigrationResult;
  topology: TopologyReport;
}

/** Migrations, then streams and consumers; both idempotent, so it runs on every start. */
export async function runSetup(config: Config): Promise<SetupReport> {
  const migrations = await migrateStorage(config.DATABASE_URL, storageOptions(config, 'setup'));
  const nc = await openNats('setup', config);
  try {
    // A single server takes an update to R3 without a word and stays R1: say so instead.
    if (config.NATS_STREAM_REPLICAS > 1 && !nc.info?.cluster) throw new Error(notClustered(config.NATS_STREAM_REPLICAS));
    const topology = await ensureTopology(await nc.jetstreamManager(), topologyOptions(config));
    return { migrations, topology };
  } catch (err) {
    throw explainReplicas(explainNatsError(err as Error, 'setup'), config);
  } finally {
    await nc.close();
  }
}

export function formatSetup(r: SetupReport): string {
  const lines = [
    ...r.migrations.applied.map((m) => `migration ${m}: applied`),
    ...r.migrations.alreadyApplied.map((m) => `migration ${m}: already applied`),
    ...r.topology.streams.map((s) => `stream ${s.name}: ${s.action}`),
    ...r.topology.consumers.map((c) => `consumer ${c.stream}/${c.name}: ${c.action}`),
  ];
  return lines.join('\n');
}

const notClustered = (n: number) =>
  `NATS_STREAM_REPLICAS=${n} needs a JetStream cluster, and this NATS server is not in one: set NATS_STREAM_REPLICAS=1, or point NATS_URL at a cluster of ${n} or more nodes (NATS_EMBEDDED=cluster runs one)`;

/** R3 asked of a single server, or of a cluster with fewer nodes up: say which setting to change. */
function explainReplicas(err: Error, config: Config): Error {
  const n = config.NATS_STREAM_REPLICAS;
  const code = (err as { api_error?: { err_code?: number } }).api_error?.err_code;
  if (n > 1 && code === 10074) return new Error(notClustered(n)); // replicas > 1 not supported in non-clustered mode
  // 10005, "no suitable peers for placement": what 2.9 and 2.10 answer while a node is down.
  if (n > 1 && (code === 10023 || code === 10005 || /insufficient resources/i.test(err.message)))
    return new Error(
      `NATS_STREAM_REPLICAS=${n}: the NATS cluster has fewer than ${n} JetStream nodes up (insufficient resources): start the missing nodes, or lower NATS_STREAM_REPLICAS`,
    );
  return err;
}
