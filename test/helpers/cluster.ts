import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { AuthFiles } from '../../src/nats/auth/identities.js';
import { type ClusterOptions, type NatsCluster, startNatsCluster } from '../../src/nats/cluster.js';
import { stackOn, type TestStack, testDirWithAuth } from './stack.js';

/**
 * A real three-node nats-server cluster on loopback (free ports, its own temporary store dirs,
 * the generated authorization with the test identity), for the cluster tests and fault scenarios.
 * Every node's log is `<dir>/cluster/<name>.log`.
 */
export interface TestCluster {
  dir: string;
  auth: AuthFiles;
  cluster: NatsCluster;
  /** Stops every node and removes the directory. */
  stop(): Promise<void>;
}

export async function startTestCluster(opts: Partial<Omit<ClusterOptions, 'dir' | 'configFile'>> = {}): Promise<TestCluster> {
  const { dir, auth } = testDirWithAuth();
  const cluster = await startNatsCluster({ dir: join(dir, 'cluster'), configFile: auth.serverConfig, ...opts });
  try {
    await cluster.waitForMetaLeader();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return {
    dir,
    auth,
    cluster,
    async stop() {
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The other servers a node is routed to (their server ids, each once), from its /routez.
 * nats-server 2.9 opens one route per pair of nodes, so `num_routes` was the number of peers;
 * 2.10+ pools routes (three connections per pair by default, more for pinned accounts), so
 * `num_routes` counts connections, not peers. Count the distinct remote servers instead.
 */
export async function routedPeers(monitorPort: number, host = '127.0.0.1'): Promise<string[]> {
  const res = await fetch(`http://${host}:${monitorPort}/routez`, { signal: AbortSignal.timeout(2000) });
  const body = (await res.json()) as { routes?: { remote_id: string }[] | null };
  return [...new Set((body.routes ?? []).map((r) => r.remote_id))];
}

/**
 * startStack (test/helpers/stack.ts) on a three-node cluster: NATS_URL lists every node and the
 * streams are R3 (NATS_STREAM_REPLICAS=3) unless `overrides` say otherwise.
 */
export interface ClusterStack extends Omit<TestStack, 'nats'> {
  cluster: NatsCluster;
}

export async function startClusterStack(
  overrides: Record<string, string> = {},
  opts: Partial<Omit<ClusterOptions, 'dir' | 'configFile'>> = {},
): Promise<ClusterStack> {
  const tc = await startTestCluster(opts);
  try {
    const stack = await stackOn(tc.dir, tc.auth, tc.cluster.urls, () => tc.cluster.stop(), { NATS_STREAM_REPLICAS: '3', ...overrides });
    return { ...stack, cluster: tc.cluster };
  } catch (err) {
    await tc.stop();
    throw err;
  }
}
