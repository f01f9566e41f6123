import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/env.js';
import { connectionOptions } from '../../src/nats/auth/options.js';
import { readStream } from '../../src/nats/stream-reader.js';
import { whileClusterSettles } from '../../src/nats/topology.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { TEST_IDENTITY } from '../helpers/stack.js';

/**
 * readStream on a three-node cluster: its ephemeral consumer is R1 and lives on one node. When
 * that node is SIGKILLed mid-read, the read goes on from after the last message it returned, on
 * a new consumer, and returns every message exactly once, in order (before, it ended early
 * without a word).
 */
let tc: TestCluster;
let nc: NatsConnection;

beforeAll(async () => {
  tc = await startTestCluster();
  const config = parseConfig({ DATA_DIR: tc.dir, NATS_URL: tc.cluster.urls });
  nc = await connect({ ...connectionOptions(config, TEST_IDENTITY), maxReconnectAttempts: -1, reconnectTimeWait: 200 });
}, 60_000);
afterAll(async () => {
  await nc?.close();
  await tc?.stop();
});

const COUNT = 3000;

describe('readStream across the death of the node holding its consumer', () => {
  it('reads every message once, in order', { timeout: 120_000 }, async () => {
    const jsm = await nc.jetstreamManager();
    // A cluster that just formed may refuse an R3 stream for a moment (nats-server 2.10).
    await whileClusterSettles(() => jsm.streams.add({ name: 'RDR', subjects: ['rdr.>'], num_replicas: 3 }));
    const js = nc.jetstream();
    const acks = [];
    for (let i = 0; i < COUNT; i++) acks.push(js.publish('rdr.x', String(i)));
    await Promise.all(acks);

    const seen: number[] = [];
    let killed: string | undefined;
    for await (const m of readStream(js, jsm, { stream: 'RDR', subject: 'rdr.>' })) {
      seen.push(Number(new TextDecoder().decode(m.data)));
      if (seen.length === 100) {
        // The node that holds the read's consumer: the one its pull goes to.
        const names = await jsm.consumers.list('RDR').next();
        const holder = names.find((c) => c.config.ack_policy === 'none')?.cluster?.leader;
        expect(holder).toBeDefined();
        killed = holder!;
        await tc.cluster.killNode(killed);
      }
    }
    expect(killed).toBeDefined();
    expect(seen).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    await tc.cluster.startNode(killed!);
  });
});
