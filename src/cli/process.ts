import { loadConfig } from '../config/env.js';
import { closeRuntime, createRuntime, type Runtime } from '../runtime/context.js';
import { onShutdown } from '../runtime/shutdown.js';

export interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Runs one long-lived orderflow process: connect, start, and on SIGINT/SIGTERM stop taking work,
 * finish what is in flight, drain NATS and close the database.
 */
export async function runProcess(name: string, start: (rt: Runtime) => Promise<Stoppable> | Stoppable): Promise<void> {
  const config = loadConfig();
  let rt: Runtime;
  try {
    rt = await createRuntime(name, config);
  } catch (err) {
    process.stderr.write(`orderflow ${name}: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const handle = await start(rt);
  onShutdown(rt.log, async () => {
    await handle.stop();
    await closeRuntime(rt);
  });
}
