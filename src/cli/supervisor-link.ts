import type { Logger } from 'pino';
import { isShuttingDown } from '../runtime/shutdown.js';

/**
 * The IPC channel between `orderflow start` and each process it runs. Through it a child says
 * when it is ready (the web app: its address), and by it a child learns that the supervisor is
 * gone: the kernel closes the channel's socket when the supervisor dies, however it dies (even
 * SIGKILL), and Node turns that into 'disconnect'. A process run on its own has no channel and
 * none of this applies.
 */
export type SupervisorMessage = { type: 'ready'; url?: string | undefined };

export function notifySupervisor(msg: SupervisorMessage): void {
  if (process.send && process.connected) process.send(msg);
}

export function watchSupervisor(log: Logger): void {
  if (!process.channel) return;
  // The channel must not keep a stopped process alive.
  process.channel.unref();
  process.once('disconnect', () => {
    if (isShuttingDown()) return;
    log.warn('orderflow start is gone; shutting down');
    process.kill(process.pid, 'SIGTERM');
  });
}
