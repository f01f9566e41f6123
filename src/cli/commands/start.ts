import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, type NatsError } from 'nats';
import { defaultAuthDir, ensureNatsAuth } from '../../nats/auth/identities.js';
import { redactUrl, splitServers } from '../../nats/auth/options.js';
import { loadConfig, type Config } from '../../config/env.js';
import { openNats } from '../../nats/connections.js';
import { natsServerAvailable, NATS_INSTALL_HINT, startNatsServer, type NatsServerProcess } from '../../nats/server-process.js';
import { supervise } from '../supervisor.js';
import { formatSetup, runSetup } from './setup.js';
import { nodeFlags } from '../../runtime/node-flags.js';
import { resolveOperatorToken, signInUrl } from '../../config/operator-token.js';

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../../bin/orderflow.mjs');
export const STARTED_PROCESSES = ['web', 'payments', 'activity', 'fulfillment', 'reconciler'] as const;

async function natsAnswers(config: Config): Promise<boolean> {
  try {
    const nc = await openNats('probe', config, { anonymous: true, timeout: 1000 });
    await nc.close();
    return true;
  } catch (err) {
    // A server with authorization answers an anonymous probe with a refusal.
    return (err as NatsError).code === ErrorCode.AuthorizationViolation;
  }
}

/** `orderflow start`: NATS (embedded if need be), setup, then the web app and every worker. */
export async function start(): Promise<void> {
  const config = loadConfig();
  const say = (line: string) => process.stdout.write(`[orderflow] ${line}\n`);
  let embedded: NatsServerProcess | undefined;

  if (!(await natsAnswers(config))) {
    if (config.NATS_EMBEDDED === 'never') {
      process.stderr.write(`orderflow start: nothing answers at NATS_URL=${redactUrl(config.NATS_URL)} (and NATS_EMBEDDED=never)\n`);
      process.exit(1);
    }
    if (!natsServerAvailable()) {
      process.stderr.write(`orderflow start: ${NATS_INSTALL_HINT}\n`);
      process.exit(1);
    }
    const url = new URL(splitServers(config.NATS_URL).servers[0]!.replace(/^nats:/, 'http:'));
    // Authorization on: every process connects as its own identity (generated on first start).
    const auth = ensureNatsAuth(defaultAuthDir(config));
    // watchParent: it stops when we do, even if we are SIGKILLed (see nats/watchdog.sh).
    embedded = await startNatsServer({ host: url.hostname, port: Number(url.port || 4222), storeDir: join(config.DATA_DIR, 'nats'), configFile: auth.serverConfig, watchParent: true });
    say(`started nats-server -js at ${embedded.url} (store ${embedded.storeDir}, log ${join(config.DATA_DIR, 'nats-server.log')}, pid ${embedded.pid}; authorization ${auth.serverConfig})`);
  } else {
    say(`using the NATS server at ${redactUrl(config.NATS_URL)}`);
  }

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
