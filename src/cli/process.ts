import { loadConfig } from '../config/env.js';
import { closeRuntime, createRuntime, type Runtime } from '../runtime/context.js';
import { onShutdown } from '../runtime/shutdown.js';
import { startOpsServer } from '../observability/server.js';
import { startHeartbeat } from '../observability/heartbeat.js';

export interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Runs one long-lived orderflow process: connect, start, and on SIGINT/SIGTERM stop taking work,
 * finish what is in flight, drain NATS and close the database.
 */
export async function runProcess(
  name: string,
  opts: { metrics?: { host: string; port: number } | undefined },
  start: (rt: Runtime) => Promise<Stoppable> | Stoppable,
): Promise<void> {
  const config = loadConfig();
  let rt: Runtime;
  try {
    rt = await createRuntime(name, config);
  } catch (err) {
    process.stderr.write(`orderflow ${name}: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const handle = await start(rt);
  const ops = opts.metrics ? await startOpsServer(rt, opts.metrics.host, opts.metrics.port) : undefined;
  const heartbeat = startHeartbeat(rt);
  onShutdown(rt.log, async () => {
    heartbeat.stop();
    await handle.stop();
    await ops?.stop();
    await closeRuntime(rt);
  });
}
