import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { JetStreamManager } from 'nats';
import { clusterBlock, newRoutePassword } from './auth/routes.js';
import { type NatsServerProcess, startNatsServer } from './server-process.js';

/**
 * A NATS cluster of N nodes (default 3) on one machine, for `orderflow start` (NATS_EMBEDDED=cluster),
 * the tests and the bench. Every node is a `nats-server -js` of its own (server-process.ts): its own
 * server name, client port, cluster (route) port, monitoring port and store dir, the same cluster
 * name, and routes to every other node. JetStream's meta group and each R3 stream's Raft group
 * then span the nodes, so one node may die and the system goes on.
 *
 * Each node runs from its own owner-only config file: the client authorization (`configFile`)
 * plus its cluster block, whose routes need a password made at random for each cluster (see
 * auth/routes.ts: without it any local process could join as a route and read every message).
 */
export interface ClusterNodeSpec {
  name: string;
  /** Client port: what NATS_URL lists. */
  port: number;
  /** Route port (`--cluster`). */
  clusterPort: number;
  /** HTTP monitoring port (`-m`): /jsz tells who leads the JetStream meta group. */
  monitorPort: number;
  storeDir: string;
  logFile: string;
}

export interface ClusterNode extends ClusterNodeSpec {
  url: string;
  /** The running server, or undefined while the node is down. */
  process: NatsServerProcess | undefined;
}

export interface NatsCluster {
  name: string;
  host: string;
  nodes: ClusterNode[];
  /** Every node's client URL, comma-separated: NATS_URL for a process that may use any of them. */
  urls: string;
  node(name: string): ClusterNode;
  /** SIGTERM: a clean shutdown (JetStream flushes, Raft steps down). */
  stopNode(name: string): Promise<void>;
  /** SIGKILL: the node dies mid-write, as a machine does. */
  killNode(name: string): Promise<void>;
  /** Starts a stopped or killed node again on the same ports and store dir (stops it first if it runs). */
  restartNode(name: string): Promise<void>;
  startNode(name: string): Promise<void>;
  /**
   * The name of the node leading the JetStream meta group; waits (bounded) until one does and
   * counts every running node as a current member of its group (what placing an R3 stream needs:
   * a leader elected by two nodes may not have heard from the third yet).
   */
  waitForMetaLeader(timeoutMs?: number): Promise<string>;
  /** Stops every node that runs (SIGTERM, then SIGKILL after 3 s). */
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** Where each node's store (`<dir>/<name>/store`) and log (`<dir>/<name>.log`) go. */
  dir: string;
  size?: number;
  host?: string;
  clusterName?: string;
  /** Node names are `<prefix>1`, `<prefix>2`, … (default `n`). */
  namePrefix?: string;
  /** Client ports, one per node; default: free ports. */
  ports?: number[];
  clusterPorts?: number[];
  monitorPorts?: number[];
  /** A nats-server config (the generated authorization, auth/identities.ts) every node runs with. */
  configFile?: string;
  /** Run each node under watchdog.sh: it stops when this process is gone, even after a SIGKILL. */
  watchParent?: boolean;
  extraArgs?: string[];
}

/** A port the OS says is free right now (loopback). Bound and released: another process may take it first, rarely. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function ports(given: number[] | undefined, size: number, host: string, taken: Set<number>): Promise<number[]> {
  if (given) {
    if (given.length !== size) throw new Error(`a cluster of ${size} needs ${size} ports, got ${given.length}`);
    for (const p of given) taken.add(p);
    return given;
  }
  const out: number[] = [];
  while (out.length < size) {
    const p = await freePort(host);
    if (taken.has(p)) continue;
    taken.add(p);
    out.push(p);
  }
  return out;
}

export async function startNatsCluster(opts: ClusterOptions): Promise<NatsCluster> {
  const size = opts.size ?? 3;
  if (size < 1) throw new Error('a cluster needs at least one node');
  const host = opts.host ?? '127.0.0.1';
  const clusterName = opts.clusterName ?? 'orderflow';
  const prefix = opts.namePrefix ?? 'n';
  const taken = new Set<number>();
  const client = await ports(opts.ports, size, host, taken);
  const route = await ports(opts.clusterPorts, size, host, taken);
  const monitor = await ports(opts.monitorPorts, size, host, taken);
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const specs: ClusterNodeSpec[] = client.map((port, i) => ({
    name: `${prefix}${i + 1}`,
    port,
    clusterPort: route[i]!,
    monitorPort: monitor[i]!,
    storeDir: join(opts.dir, `${prefix}${i + 1}`, 'store'),
    logFile: join(opts.dir, `${prefix}${i + 1}.log`),
  }));
  const nodes: ClusterNode[] = specs.map((s) => ({ ...s, url: `nats://${host}:${s.port}`, process: undefined }));
  // One password per cluster: every node is (re)started from here with the same.
  const password = newRoutePassword();
  const base = opts.configFile ? readFileSync(opts.configFile, 'utf8') : '';
  const configOf = (n: ClusterNodeSpec) => {
    const file = join(opts.dir, `${n.name}.conf`);
    const others = specs.filter((o) => o.name !== n.name).map((o) => `${host}:${o.clusterPort}`);
    const block = clusterBlock({ name: clusterName, listen: `${host}:${n.clusterPort}`, routes: others, password });
    writeFileSync(
      file,
      `${base}
server_name: "${n.name}"
${block}`,
      { mode: 0o600 },
    );
    chmodSync(file, 0o600);
    return file;
  };

  const node = (name: string) => {
    const n = nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name} in cluster ${clusterName} (nodes: ${nodes.map((x) => x.name).join(', ')})`);
    return n;
  };
  const startNode = async (name: string) => {
    const n = node(name);
    if (n.process) return;
    n.process = await startNatsServer({
      host,
      port: n.port,
      storeDir: n.storeDir,
      logFile: n.logFile,
      configFile: configOf(n),
      ...(opts.watchParent ? { watchParent: true } : {}),
      extraArgs: ['-m', String(n.monitorPort), ...(opts.extraArgs ?? [])],
    });
    // A node that dies by itself (or is killed from outside) is down: restartNode brings it back.
    const proc = n.process;
    proc.child.once('exit', () => {
      if (n.process === proc) n.process = undefined;
    });
  };
  const stopNode = async (name: string) => {
    const n = node(name);
    const proc = n.process;
    if (!proc) return;
    await proc.stop();
    if (n.process === proc) n.process = undefined;
  };
  const killNode = async (name: string) => {
    const n = node(name);
    const proc = n.process;
    if (!proc) return;
    const exited = new Promise<void>((r) => (proc.child.exitCode !== null || proc.child.signalCode !== null ? r() : proc.child.once('exit', () => r())));
    // nats-server itself, not the watchdog around it (which would SIGTERM it: a clean stop).
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await exited;
    if (n.process === proc) n.process = undefined;
  };
  /** One look at the JetStream meta group: its leader, and the running nodes it does not count as current, online members. */
  const metaState = async (): Promise<{ leader?: string; missing: string[]; why: string }> => {
    let why = 'no node answered';
    const running = nodes.filter((x) => x.process);
    const leader = await firstAnswer(
      running,
      async (n) => (await metaGroup(host, n.monitorPort)).leader,
      (n, err) => (why = `${n.name}: ${err.message}`),
    );
    if (!leader) return { missing: [], why: why === 'no node answered' ? 'no meta leader yet' : why };
    // Only the leader lists the group's other members (and whether each is current).
    const group = await metaGroup(host, node(leader).monitorPort).catch((err: Error) => void (why = `${leader}: ${err.message}`));
    if (group?.leader !== leader) return { missing: [], why };
    const current = new Set((group.replicas ?? []).filter((r) => r.current && !r.offline).map((r) => r.name));
    const missing = running.filter((n) => n.name !== leader && !current.has(n.name)).map((n) => n.name);
    return {
      leader,
      missing,
      why: `meta leader ${leader} does not count ${missing.join(', ')} as a current, online member of its group (cluster_size ${group.cluster_size})`,
    };
  };
  const cluster: NatsCluster = {
    name: clusterName,
    host,
    nodes,
    urls: nodes.map((n) => n.url).join(','),
    node,
    startNode,
    stopNode,
    killNode,
    async restartNode(name) {
      await stopNode(name);
      await startNode(name);
    },
    async waitForMetaLeader(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = await metaState();
        if (m.leader && m.missing.length === 0) return m.leader;
        if (Date.now() > deadline) throw new Error(`cluster ${clusterName} has no JetStream meta group of its running nodes after ${timeoutMs} ms (${m.why})`);
        await sleep(100);
      }
    },
    async stop() {
      await Promise.allSettled(nodes.map((n) => stopNode(n.name)));
    },
  };
  try {
    // One after the other ("Server is ready" comes before its routes are up, so none waits for
    // the others). nats-server 2.10.27 nodes started at the same moment left a node out of the
    // meta group (see formMetaGroup) in 40 of 800 new clusters, one after the other in 17 of 800.
    for (const n of nodes) await startNode(n.name);
    await formMetaGroup(cluster, metaState);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long a node may stay out of the meta group an elected leader leads before it is restarted. */
const LEFT_OUT_MS = 3000;

/**
 * Waits until the meta group holds every node. nats-server 2.10.27 sometimes elects a meta leader
 * with two nodes of a new cluster and never takes the third in: the leader lowers cluster_size to
 * 2 and, in the debug log of one such start, never heard from the third node (which followed it
 * all the same); every R3 stream is then refused ("no suitable peers for placement") for good.
 * Restarting the node left out (same ports and store) brought it in each of the 59 times it was
 * needed, within a second; here at most twice, then the caller is told why. nats-server 2.9.10
 * formed the group at once in 450 new clusters.
 */
async function formMetaGroup(
  cluster: NatsCluster,
  metaState: () => Promise<{ leader?: string; missing: string[]; why: string }>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let restarts = 0;
  let leftOutSince: number | undefined;
  for (;;) {
    const m = await metaState();
    if (m.leader && m.missing.length === 0) return;
    if (m.leader && m.missing.length > 0) {
      leftOutSince ??= Date.now();
      if (Date.now() - leftOutSince > LEFT_OUT_MS && restarts < 2) {
        restarts++;
        leftOutSince = undefined;
        for (const name of m.missing) await cluster.restartNode(name);
        continue;
      }
    } else {
      leftOutSince = undefined;
    }
    if (Date.now() > deadline) throw new Error(`cluster ${cluster.name} has no JetStream meta group of all its nodes after ${timeoutMs} ms (${m.why})`);
    await sleep(100);
  }
}

interface MetaGroup {
  leader: string | undefined;
  cluster_size?: number;
  /** On the leader only: the group's other members (offline: the leader has not heard from it lately). */
  replicas?: { name: string; current: boolean; offline?: boolean }[];
}

/** The JetStream meta group as one node sees it (its /jsz); `leader` is undefined while there is none. */
async function metaGroup(host: string, monitorPort: number): Promise<MetaGroup> {
  const res = await fetch(`http://${host}:${monitorPort}/jsz`, { signal: AbortSignal.timeout(1000) });
  const body = (await res.json()) as { meta_cluster?: Omit<MetaGroup, 'leader'> & { leader?: string } };
  return { ...body.meta_cluster, leader: body.meta_cluster?.leader || undefined };
}

/** The first defined answer of `ask` over `nodes`, in order; a node that fails is reported and skipped. */
async function firstAnswer<T>(
  nodes: ClusterNode[],
  ask: (n: ClusterNode) => Promise<T | undefined>,
  failed: (n: ClusterNode, err: Error) => void,
): Promise<T | undefined> {
  for (const n of nodes) {
    const v = await ask(n).catch((err: Error) => void failed(n, err));
    if (v !== undefined) return v;
  }
  return undefined;
}

/**
 * The node leading `stream` (`jsm.streams.info(stream).cluster.leader`), waiting (bounded) until
 * it has one, and, with `not`, until it is another node than that one (after its leader died).
 */
export async function waitForStreamLeader(jsm: JetStreamManager, stream: string, opts: { not?: string; timeoutMs?: number } = {}): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    const leader = await jsm.streams.info(stream).then(
      (i) => i.cluster?.leader,
      (err: Error) => void (last = err.message),
    );
    if (leader && leader !== opts.not) return leader;
    if (Date.now() > deadline) throw new Error(`stream ${stream} has no leader${opts.not ? ` other than ${opts.not}` : ''} after ${timeoutMs} ms (${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
