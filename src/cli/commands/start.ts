import { resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../config/env.js';
import { ensureNats } from './embedded-nats.js';
import { supervise, type ChildSpec } from '../supervisor.js';
import { defaultScale, instanceNames, PROCESS_KINDS, type Scale } from '../scale.js';
import { formatSetup, runSetup } from './setup.js';
import { nodeFlags } from '../../runtime/node-flags.js';
import { resolveOperatorToken, signInUrl } from '../../config/operator-token.js';

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../../bin/orderflow.mjs');

/**
 * One child per instance. Workers need nothing to be copied: a kind's copies share its durable
 * pull consumer (JetStream hands each message to one of them), its queue group (payments), and the
 * database, whose claims decide which reconciler re-drives an order.
 *
 * Web copies must share one PORT. With more than one, this process is their node:cluster primary
 * and forks them as cluster workers: their listen() is done here once, and connections are handed
 * to them in turn (Node's round-robin). We run the cluster workers directly, rather than one child
 * that would be a primary of its own, so that each web copy is an instance like any other: its own
 * restarts and backoff, `restart web-2`, `status`, its drain on SIGTERM (it stops taking
 * connections while the others go on), with no second process manager inside the first. One web
 * copy listens by itself, as `orderflow web` does when run by hand.
 */
export function childSpecs(scale: Scale, env: NodeJS.ProcessEnv): ChildSpec[] {
  return PROCESS_KINDS.flatMap((kind) => {
    const base = kind === 'web' ? ['web'] : ['worker', kind];
    const names = instanceNames(kind, scale[kind]);
    return names.map((name) => ({
      name,
      kind,
      env,
      execArgv: nodeFlags(base),
      script: BIN,
      args: [...base, ...(names.length > 1 ? ['--instance', name] : [])],
      sharesListeners: kind === 'web' && names.length > 1,
    }));
  });
}

/** `orderflow start`: NATS (embedded if need be), setup, then the web app and every worker, `scale` copies of each. */
export async function start(opts: { scale: Scale } = { scale: defaultScale() }): Promise<void> {
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
  const specs = childSpecs(opts.scale, env);
  let announced = false;
  const sup = supervise(
    specs,
    say,
    {
      // The order form's address once the web app listens (not before: the port may be taken);
      // once, however many web copies there are (they all serve it).
      onMessage: (spec, msg) => {
        if (spec.kind === 'web' && msg.type === 'ready' && msg.url && !announced) {
          announced = true;
          say(`order form: ${msg.url}/orders/create   (Ctrl-C stops everything)`);
          // The token was resolved above, before the web app started, so both read the same file.
          say(`dashboard (operators): ${signInUrl(msg.url, operator)}`);
        }
      },
      commands: process.stdin,
    },
  );
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => sup.stop(signal));
  if (process.stdin.isTTY) say(`type \`stop <name>\`, \`start <name>\`, \`restart <name>\` or \`status\` here (names: ${specs.map((s) => s.name).join(', ')}; a kind means all its copies)`);

  const code = await sup.done;
  if (embedded) {
    await embedded.stop();
    say('nats-server stopped');
  }
  say('all stopped');
  process.exit(code);
}
