import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import pino from 'pino';
import { connectionOptions } from '../../src/nats/auth/options.js';
import { openNats } from '../../src/nats/connections.js';
import { parseConfig, type Config } from '../../src/config/env.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
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
    await jsm.streams.add({ name: 'CLT', subjects: ['clt.>'], num_replicas: 3 });
    const js = nc.jetstream();
    for (let i = 0; i < 20; i++) await js.publish('clt.x', `m${i}`);
    const before = await jsm.streams.info('CLT');
    expect(before.cluster?.replicas).toHaveLength(2);
    const leader = before.cluster!.leader!;
    const port = tc.cluster.node(leader).port;

    await tc.cluster.killNode(leader);
    expect(tc.cluster.node(leader).process).toBeUndefined();
    const after = await waitFor(
      async () => {
        const i = await jsm.streams.info('CLT').catch(() => undefined);
        return i?.cluster?.leader && i.cluster.leader !== leader ? i : undefined;
      },
      30_000,
      'a new stream leader',
    );
    expect(after.state.messages).toBe(20);
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
    const sink = new Writable({ write: (chunk, _enc, cb) => (lines.push(...String(chunk).trim().split('\n').map((l) => JSON.parse(l))), cb()) });
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
