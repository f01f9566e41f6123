import cluster from 'node:cluster';
import closeWithGrace from 'close-with-grace';
import type { Logger } from 'pino';

/**
 * The promise ARCHITECTURE makes: a process told to stop is gone within STOP_WITHIN_MS, whatever
 * NATS does. Each step of a shutdown gets its own share (see `bounded`), so one that hangs (a drain
 * waiting for a server that is gone) cannot eat the others' time; close-with-grace's timer is
 * the last resort behind them.
 */
export const STOP_WITHIN_MS = 10_000;

/**
 * On SIGINT/SIGTERM (or an uncaught error) run `close` once — stop taking work, finish what is in
 * flight, drain NATS, close the database — and exit. If that takes longer than `delayMs`, exit anyway.
 */
let shuttingDown = false;
/** Whether this process is already shutting down (a second SIGTERM would skip the drain). */
export const isShuttingDown = () => shuttingDown;

export function onShutdown(log: Logger, close: () => Promise<void>, delayMs = STOP_WITHIN_MS - 1000): void {
  // Only the signals that ask a process to stop: a real SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT
  // must kill it as the fault it is (Node warns that JS listeners on them can leave it hanging), so
  // a supervisor and the fault suite see a crash, not a clean exit 0.
  const skip = ['SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGSEGV'] as const;
  closeWithGrace({ delay: delayMs, skip: [...skip], logger: { error: (m: unknown) => log.error(String(m)) } }, async ({ signal, err }) => {
    shuttingDown = true;
    if (cluster.isWorker) ignoreFurtherStops(log);
    if (err) log.error({ err }, 'fatal error; shutting down');
    else log.info({ signal }, 'shutting down');
    await close();
    log.info('stopped');
    log.flush?.();
  });
}

/**
 * A web copy under `orderflow start --scale web=N` is a node:cluster worker (cli/commands/start.ts),
 * and cluster.fork cannot detach it into a process group of its own: a Ctrl-C reaches it from the
 * terminal and again as the supervisor's SIGTERM. That is one request to stop, not a person
 * insisting, so the second must not skip the drain (close-with-grace exits at once on a second
 * signal). The supervisor SIGKILLs a child that is not gone within its bound, so nothing hangs.
 */
function ignoreFurtherStops(log: Logger): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const others = process.listeners(signal);
    // Our listener first: with none at all, the signal's default action (exit) would come back.
    process.on(signal, () => log.debug({ signal }, 'already stopping'));
    for (const l of others) process.removeListener(signal, l);
  }
}

/**
 * Waits for `work` at most `ms`; past that, logs what was left unfinished and goes on. Used for
 * each step of a shutdown, so the whole stays inside STOP_WITHIN_MS.
 */
export async function bounded(what: string, work: Promise<unknown> | (() => Promise<unknown>), ms: number, log?: Logger): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), ms);
  });
  try {
    const p = typeof work === 'function' ? work() : work;
    const r = await Promise.race([p.then(() => 'done' as const), timedOut]);
    if (r === 'timeout') log?.warn({ step: what, after_ms: ms }, `${what} did not finish within ${ms} ms; going on without it`);
    return r === 'done';
  } catch (err) {
    log?.warn({ step: what, err: (err as Error).message }, `${what} failed`);
    return false;
  } finally {
    clearTimeout(timer);
  }
}
