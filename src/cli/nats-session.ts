import type { NatsConnection } from 'nats';
import { loadConfig } from '../config/env.js';
import { redactUrl } from '../nats/auth/options.js';
import { openNats } from '../nats/connections.js';
import { fail } from './errors.js';

/**
 * One NATS connection for an operator's command, closed afterwards. Any failure (cannot connect,
 * a stream that is not there, …) ends the command with one line naming the server it used.
 */
export async function withNats<T>(command: string, fn: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const where = { natsUrl: redactUrl(config.NATS_URL) };
  const nc = await openNats('cli', config, { name: command }).catch((err: unknown) => fail(command, err, where));
  let result: T;
  try {
    result = await fn(nc);
  } catch (err) {
    await nc.close().catch(() => undefined);
    return fail(command, err, where);
  }
  await nc.drain().catch(() => undefined);
  return result;
}
