import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../config/env.js';
import { ensureNats } from './embedded-nats.js';
import { supervise } from '../supervisor.js';
import { formatSetup, runSetup } from './setup.js';
import { nodeFlags } from '../../runtime/node-flags.js';
import { resolveOperatorToken, signInUrl } from '../../config/operator-token.js';

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../../bin/orderflow.mjs');
export const STARTED_PROCESSES = ['web', 'payments', 'activity', 'fulfillment', 'reconciler'] as const;

/** `orderflow start`: NATS (embedded if need be), setup, then the web app and every worker. */
export async function start(): Promise<void> {
  const say = (line: string) => process.stdout.write(`[orderflow] ${line}\n`);
  const embedded = await ensureNats(loadConfig(), say);
  // NATS_EMBEDDED=cluster: the cluster's URLs and R3 replace the configured single server.
  const config = loadConfig({ ...process.env, ...embedded?.env });

  try {
    const report = await runSetup(config);
    for (const line of formatSetup(report).split('\n')) say(line);
  } catch (err) {
    process.stderr.write(`orderflow start: setup failed: ${(err as Error).message}\n`);
    await embedded?.stop();
    process.exit(1);
  }

  let operator;
  try {
    operator = resolveOperatorToken(config);
  } catch (err) {
    process.stderr.write(`orderflow start: ${(err as Error).message}\n`);
    await embedded?.stop();
    process.exit(1);
  }
  const env = {
    ...process.env,
    ...embedded?.env,
    // Children write to a pipe (ours): pretty unless the operator said otherwise.
    ORDERFLOW_PRETTY: config.ORDERFLOW_PRETTY ?? '1',
    ...(process.stdout.isTTY && !process.env.NO_COLOR ? { FORCE_COLOR: '1' } : {}),
  };
  const sup = supervise(
    STARTED_PROCESSES.map((name) => {
      const args = name === 'web' ? ['web'] : ['worker', name];
      return { name, env, args: [...nodeFlags(args), BIN, ...args] };
    }),
    say,
    {
      // The order form's address once the web app listens (not before: the port may be taken).
      onMessage: (name, msg) => {
        if (name === 'web' && msg.type === 'ready' && msg.url) {
          say(`order form: ${msg.url}/orders/create   (Ctrl-C stops everything)`);
          // The token was resolved above, before the web app started, so both read the same file.
          say(`dashboard (operators): ${signInUrl(msg.url, operator)}`);
        }
      },
      commands: process.stdin,
    },
  );
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => sup.stop(signal));
  if (process.stdin.isTTY) say(`type \`stop <name>\`, \`start <name>\`, \`restart <name>\` or \`status\` here (names: ${STARTED_PROCESSES.join(', ')})`);

  const code = await sup.done;
  if (embedded) {
    await embedded.stop();
    say('nats-server stopped');
  }
  say('all stopped');
  process.exit(code);
}
