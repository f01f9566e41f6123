import { getPriority, setPriority } from 'node:os';
import { loadConfig } from '../config/env.js';
import { startHeartbeat } from '../observability/heartbeat.js';
import { startOpsServer } from '../observability/server.js';
import { closeRuntime, createRuntime, type Runtime } from '../runtime/context.js';
import { bounded, onShutdown } from '../runtime/shutdown.js';
import { fail } from './errors.js';
import { notifySupervisor, watchSupervisor } from './supervisor-link.js';

export interface Stoppable {
  stop(): Promise<void>;
  /** Where it serves, for processes that listen (the web app). */
  url?: string;
}

/**
 * Runs one long-lived orderflow process: connect, start, and on SIGINT/SIGTERM stop taking work,
 * finish what is in flight, drain NATS and close the database, every step within its share of
 * STOP_WITHIN_MS (runtime/shutdown.ts). A process that cannot start says why in one line and exits
 * non-zero (EXIT_CONFIG when a setting must change first, such as a port in use).
 */
export async function runProcess(
  name: string,
  opts: {
    metrics?: { host: string; port: number } | undefined;
    instance?: string | undefined;
    /** Nobody waits on this process's work (a POST does not): it yields the CPU (BACKGROUND_NICE). */
    background?: boolean;
  },
  start: (rt: Runtime) => Promise<Stoppable> | Stoppable,
): Promise<void> {
  const config = loadConfig();
  const where = { natsUrl: config.NATS_URL, databaseUrl: config.DATABASE_URL };
  let rt: Runtime;
  try {
    rt = await createRuntime(name, config, name, opts.instance ?? name);
  } catch (err) {
    return fail(name, err, where);
  }
  if (opts.background) yieldCpu(config.BACKGROUND_NICE, rt.log);
  let handle: Stoppable | undefined;
  let ops: Awaited<ReturnType<typeof startOpsServer>> | undefined;
  try {
    handle = await start(rt);
    ops = opts.metrics ? await startOpsServer(rt, opts.metrics.host, opts.metrics.port) : undefined;
  } catch (err) {
    await bounded(
      'stop',
      async () => {
        await handle?.stop();
        await closeRuntime(rt);
      },
      3000,
    );
    return fail(name, err, where);
  }
  const heartbeat = startHeartbeat(rt);
  // Under `orderflow start`: say we are ready (the web app's address), and stop when it is gone.
  notifySupervisor({ type: 'ready', url: handle.url });
  watchSupervisor(rt.log);
  onShutdown(rt.log, async () => {
    heartbeat.stop();
    await bounded(`${name} stop`, handle.stop(), 4500, rt.log);
    await bounded('metrics server stop', ops?.stop() ?? Promise.resolve(), 500, rt.log);
    await closeRuntime(rt);
  });
}

/**
 * On a machine whose cores are all busy, every process waits its turn, and a POST waits on three
 * (the web app, payments, nats-server) while the activity recorder and the reconciler do work
 * nobody is waiting for. At 300 orders/s on 2 cores, those two at nice 10 took POST p99 from
 * 80-135 to 30-39 ms in an A/B run, and still kept up at 600/s. Fulfillment stays at normal
 * priority: niced too, it held SQLite's write lock while the web app waited, and 600/s was no
 * longer sustained. Lowering one's own priority needs no privilege; a process already nicer
 * (started under `nice`) is left as it is.
 */
function yieldCpu(nice: number, log: Runtime['log']): void {
  try {
    if (nice > getPriority()) setPriority(nice);
    log.debug({ nice: getPriority() }, 'CPU priority lowered (BACKGROUND_NICE)');
  } catch (err) {
    log.warn({ err, nice }, 'could not lower CPU priority (BACKGROUND_NICE); running at normal priority');
  }
}
