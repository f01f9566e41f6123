import closeWithGrace from 'close-with-grace';
import type { Logger } from 'pino';

/**
 * On SIGINT/SIGTERM (or an uncaught error) run `close` once — stop taking work, finish what is in
 * flight, drain NATS, close the database — and exit. If that takes longer than `delayMs`, exit anyway.
 */
export function onShutdown(log: Logger, close: () => Promise<void>, delayMs = 10_000): void {
  closeWithGrace({ delay: delayMs }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'fatal error; shutting down');
    else log.info({ signal }, 'shutting down');
    await close();
    log.info('stopped');
    log.flush?.();
  });
}
