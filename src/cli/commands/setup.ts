import type { Config } from '../../config/env.js';
import { migrateStorage, storageOptions, type MigrationResult } from '../../storage/open.js';
import { explainNatsError, openNats } from '../../nats/connections.js';
import { ensureTopology, topologyOptions, type TopologyReport } from '../../nats/topology.js';

export interface SetupReport {
  migrations: MigrationResult;
  topology: TopologyReport;
}

/** Migrations, then streams and consumers; both idempotent, so it runs on every start. */
export async function runSetup(config: Config): Promise<SetupReport> {
  const migrations = await migrateStorage(config.DATABASE_URL, storageOptions(config, 'setup'));
  const nc = await openNats('setup', config);
  try {
    const topology = await ensureTopology(await nc.jetstreamManager(), topologyOptions(config));
    return { migrations, topology };
  } catch (err) {
    throw explainNatsError(err as Error, 'setup');
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
