// Ceiling: raw NATS, no orderflow code. Prints one JSON line:
//   request/reply round trip one at a time, and JetStream publish awaiting each ack.
// Arguments: the server URL (a cluster's comma list), how long each part runs (ms), and the
// stream's replicas (3 on a cluster: each ack then waits for a majority of the nodes).
import { connect } from 'nats';
import { whileClusterSettles } from '../../src/nats/topology.js';
import { benchNatsOptions, timeLoop } from '../lib.js';

const [url, ms, replicas] = [process.argv[2]!, Number(process.argv[3] ?? 3000), Number(process.argv[4] ?? 1)];
const server = await connect(benchNatsOptions(url));
const client = await connect(benchNatsOptions(url));
server.subscribe('bench.echo', { callback: (_e, m) => m.respond(m.data) });
await server.flush();
const payload = new TextEncoder().encode(JSON.stringify({ order_id: 'bench', amount_cents: 1250 }));
const reqreply = await timeLoop(ms, () => client.request('bench.echo', payload, { timeout: 2000 }));

const jsm = await client.jetstreamManager();
// A cluster that has just formed may refuse an R3 stream for a moment, as setup finds (topology.ts).
await whileClusterSettles(() => jsm.streams.add({ name: 'BENCH', subjects: ['bench.js.>'], num_replicas: replicas }));
const js = client.jetstream();
let i = 0;
const jspublish = await timeLoop(ms, () => js.publish('bench.js.x', payload, { msgID: String(i++) }));
await jsm.streams.delete('BENCH');
process.stdout.write(`${JSON.stringify({ reqreply, jspublish: { ...jspublish, replicas } })}\n`);
await Promise.all([server.close(), client.close()]);
