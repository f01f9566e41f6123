import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect, type NatsConnection } from 'nats';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Config, parseConfig } from '../../src/config/env.js';
import { connectionOptions } from '../../src/nats/auth/options.js';
import { freePort, waitForStreamLeader } from '../../src/nats/cluster.js';
import { openNats } from '../../src/nats/connections.js';
import { startNatsServer } from '../../src/nats/server-process.js';
import { whileClusterSettles } from '../../src/nats/topology.js';
import { routedPeers, startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { TEST_IDENTITY, waitFor } from '../helpers/stack.js';

/** The launcher of src/nats/cluster.ts on real nats-server processes: three nodes, one R3 stream, a leader killed and brought back. */
let tc: TestCluster;
let nc: NatsConnection;
let config: Config;

beforeAll(async () => {
  tc = await startTestCluster();
  config = parseConfig({ DATA_DIR: tc.dir, NATS_URL: tc.cluster.urls });
  nc = await connect({ ...connectionOptions(config, TEST_IDENTITY), maxReconnectAttempts: -1, reconnectTimeWait: 200 });
}, 60_000);
afterAll(async () => {
  await nc?.close();
  await tc?.stop();
});

describe('a three-node cluster on loopback', () => {
  it('has three named nodes, every URL in one comma list, and a meta leader', async () => {
    expect(tc.cluster.nodes.map((n) => n.name)).toEqual(['n1', 'n2', 'n3']);
    expect(tc.cluster.urls.split(',')).toHaveLength(3);
    expect(new Set(tc.cluster.nodes.flatMap((n) => [n.port, n.clusterPort, n.monitorPort])).size).toBe(9);
    expect(['n1', 'n2', 'n3']).toContain(await tc.cluster.waitForMetaLeader());
  });

  it('refuses an anonymous client on every node (the generated authorization)', async () => {
    for (const n of tc.cluster.nodes) await expect(connect({ servers: n.url, reconnect: false })).rejects.toThrow(/authorization/i);
  });

  it('keeps an R3 stream through the SIGKILL of its leader, and the node comes back on its ports and store', async () => {
    const jsm = await nc.jetstreamManager();
    // A cluster that just formed may refuse an R3 stream for a moment (nats-server 2.10).
    await whileClusterSettles(() => jsm.streams.add({ name: 'CLT', subjects: ['clt.>'], num_replicas: 3 }));
    const js = nc.jetstream();
    for (let i = 0; i < 20; i++) await js.publish('clt.x', `m${i}`);
    const before = await jsm.streams.info('CLT');
    expect(before.cluster?.replicas).toHaveLength(2);
    const leader = before.cluster!.leader!;
    const port = tc.cluster.node(leader).port;

    await tc.cluster.killNode(leader);
    expect(tc.cluster.node(leader).process).toBeUndefined();
    expect(await waitForStreamLeader(jsm, 'CLT', { not: leader })).not.toBe(leader);
    expect((await jsm.streams.info('CLT')).state.messages).toBe(20);
    await js.publish('clt.x', 'while one node is down');

    await tc.cluster.restartNode(leader);
    expect(tc.cluster.node(leader).port).toBe(port);
    const back = await waitFor(
      async () => {
        const i = await jsm.streams.info('CLT').catch(() => undefined);
        const r = i?.cluster?.replicas?.find((x) => x.name === leader);
        return r?.current ? i : undefined;
      },
      30_000,
      `${leader} current again`,
    );
    expect(back.state.messages).toBe(21);
  }, 90_000);

  it('a process connects to the first node of NATS_URL, says so, and after that node dies says which one it moved to', async () => {
    const lines: { msg: string; nats_server?: string; nats_url?: string }[] = [];
    const sink = new Writable({
      write: (chunk, _enc, cb) => {
        for (const l of String(chunk).trim().split('\n')) lines.push(JSON.parse(l));
        cb();
      },
    });
    const log = pino({ level: 'info' }, sink);
    const conn = await openNats(TEST_IDENTITY, config, { log, name: 'cluster-test' });
    try {
      expect(lines[0]).toMatchObject({ msg: 'nats connected to n1', nats_server: 'n1', nats_url: tc.cluster.node('n1').url.replace('nats://', '') });
      await tc.cluster.killNode('n1');
      const moved = await waitFor(() => lines.find((l) => l.msg.startsWith('nats reconnected to')), 30_000, 'a reconnect line');
      expect(['n2', 'n3']).toContain(moved.nats_server);
      expect(moved.msg).toBe(`nats reconnected to ${moved.nats_server}`);
      expect(await conn.rtt()).toBeGreaterThanOrEqual(0);
    } finally {
      await conn.close();
      await tc.cluster.restartNode('n1');
    }
  }, 90_000);
});

// Last: the stranger that joins (the control) is a JetStream node of the cluster while it lives.
describe('the routes of the cluster', () => {
  it('accepts a route only with the cluster password, kept in owner-only files, never on a command line', async () => {
    const n1 = tc.cluster.nodes[0]!;
    const routes = async () => (await routedPeers(n1.monitorPort)).length;
    // The earlier tests killed nodes: wait until every one is back on its routes.
    await waitFor(async () => (await routes()) === 2, 15_000, 'n1 routed to both other nodes');
    const conf = join(tc.dir, 'cluster', `${n1.name}.conf`);
    expect(statSync(conf).mode & 0o777).toBe(0o600);
    const password = /password: "([^"]+)"/.exec(readFileSync(conf, 'utf8'))![1]!;
    expect(readFileSync(`/proc/${n1.process!.pid}/cmdline`, 'utf8')).not.toContain(password);
    // A stranger soliciting a route: without the password it is refused; with it (the control,
    // showing this test sees a join) it becomes n1's third peer.
    const stranger = async (credentials: string) => {
      const s = await startNatsServer({
        storeDir: join(tc.dir, `stranger-${credentials ? 'with' : 'without'}`),
        extraArgs: [
          '--server_name',
          `stranger-${credentials ? 'with' : 'without'}`,
          '--cluster_name',
          tc.cluster.name,
          '--cluster',
          `nats://127.0.0.1:${await freePort()}`,
          '--routes',
          `nats-route://${credentials}127.0.0.1:${n1.clusterPort}`,
        ],
      });
      try {
        return await waitFor(async () => ((await routes()) > 2 ? 'joined' : undefined), 3000).catch(() => 'refused');
      } finally {
        await s.stop();
      }
    };
    expect(await stranger('')).toBe('refused');
    expect(await stranger(`route:${password}@`)).toBe('joined');
  });
});
