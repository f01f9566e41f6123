import { createRequire } from 'node:module';
import { Command, type CommanderError } from 'commander';
import { z } from 'zod';
import { loadConfig, parseConfig } from '../config/env.js';
import { startWeb } from '../web/server.js';
import { startActivityWorker } from '../workers/activity.js';
import { startFulfillmentWorker } from '../workers/fulfillment.js';
import { startPaymentResponder } from '../workers/payments.js';
import { startReconciler } from '../workers/reconciler.js';
import { hostPort, hostPorts, parseArgs, portArg, seqArg } from './args.js';
import { check } from './commands/check.js';
import { dlqList, dlqPurge, dlqRetry, dlqShow } from './commands/dlq.js';
import { eventsReplay, eventsTail, natsConsumers, natsStreams, projectionsRebuild } from './commands/inspect.js';
import { natsAuthInit } from './commands/nats-auth.js';
import { formatSetup, runSetup } from './commands/setup.js';
import { start } from './commands/start.js';
import { fail } from './errors.js';
import { runProcess } from './process.js';
import { defaultScale, instanceArg, PROCESS_KINDS, scaleArg } from './scale.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** Every `orderflow` command, defined once (the compose test checks its commands against it). */
export const program = new Command('orderflow')
  .description('Event-driven order processing on NATS and JetStream')
  .version(version)
  .showHelpAfterError()
  // Usage errors exit 2 (the shell convention); help and --version exit 0.
  .exitOverride((err: CommanderError) => process.exit(err.exitCode === 0 ? 0 : 2));

program
  .command('start')
  .description('run everything on this machine: NATS (started if none answers), setup, the web app and every worker')
  .option('--scale <kind=n,...>', `copies of each kind, e.g. web=2,payments=2 (kinds: ${PROCESS_KINDS.join(', ')}; one of each unless given)`)
  .action((opts: { scale?: string }) => start({ scale: opts.scale === undefined ? defaultScale() : parseArgs('start --scale', scaleArg, opts.scale) }));

program
  .command('setup')
  .description('apply database migrations and create or update the JetStream streams and consumers (idempotent)')
  .option('--json', 'print the report as JSON')
  .action(async (opts: { json?: boolean }) => {
    const config = loadConfig();
    const report = await runSetup(config).catch((err: Error) => fail('setup', err, { natsUrl: config.NATS_URL, databaseUrl: config.DATABASE_URL }));
    process.stdout.write(`${opts.json ? JSON.stringify(report) : formatSetup(report)}\n`);
  });

program
  .command('web')
  .description('run the web app (order form and JSON API)')
  .option('--instance <name>', "this copy's name in logs, NATS and the dashboard (default: web)")
  .action((opts: { instance?: string }) =>
    runProcess('web', { instance: instanceOpt('web', opts.instance) }, async (rt) => {
      const server = await startWeb(rt);
      rt.log.info({ url: server.url }, `listening on ${server.url}`);
      rt.log.info(`operators: sign in at ${server.signInUrl}`);
      return { url: server.url, stop: server.stop };
    }),
  );

const instanceOpt = (command: string, value: string | undefined) => (value === undefined ? undefined : parseArgs(`${command} --instance`, instanceArg, value));

const subjectFilter = z.string().regex(/^orders(\.[A-Za-z0-9_*>-]+)+$/, 'an orders subject filter, like orders.> or orders.shipped');

export const workerNames = z.enum(['payments', 'activity', 'fulfillment', 'reconciler']);
program
  .command('worker')
  .description('run one worker')
  .argument('<name>', `one of: ${workerNames.options.join(', ')}`)
  .option('--live', 'activity only: a plain core subscription on orders.* instead of the durable consumer')
  .option('--metrics-port <port>', 'serve /health, /ready and /metrics on this port (0: any free port)')
  .option('--metrics-host <host>', 'address for --metrics-port', '127.0.0.1')
  .option('--instance <name>', "this copy's name in logs, NATS and the dashboard, e.g. payments-2 (default: the worker's name)")
  .addHelpText(
    'after',
    `
Workers:
  payments     answers payments.validate (NATS micro service "payments", queue group)
  activity     records every orders.* event in nats_activities (durable JetStream consumer)
  fulfillment  ships paid orders from the JOBS stream; publishes orders.shipped and metrics.orders
  reconciler   publishes outbox rows left behind, retries payments, re-queues lost fulfilment`,
  )
  .action((nameArg: string, opts: { live?: boolean; metricsPort?: string; metricsHost: string; instance?: string }) => {
    const name = parseArgs('worker', workerNames, nameArg);
    const metricsPort = opts.metricsPort === undefined ? undefined : parseArgs('worker --metrics-port', portArg, opts.metricsPort);
    if (opts.live && name !== 'activity') parseArgs('worker', z.never({ message: '--live applies to the activity worker only' }), opts.live);
    const metrics = metricsPort === undefined ? undefined : { host: opts.metricsHost, port: metricsPort };
    // Payments answers a waiting POST, and fulfillment takes the write lock a POST waits on (niced,
    // it held that lock longer near saturation); only activity and the reconciler wait for no one.
    const background = name === 'activity' || name === 'reconciler';
    return runProcess(name, { metrics, instance: instanceOpt('worker', opts.instance), background }, async (rt) => {
      switch (name) {
        case 'payments':
          return startPaymentResponder(rt);
        case 'activity':
          return startActivityWorker(rt, { live: opts.live ?? false });
        case 'fulfillment':
          return startFulfillmentWorker(rt);
        case 'reconciler':
          return startReconciler(rt);
      }
    });
  });

const dlq = program.command('dlq').description('operate the dead letters (the DLQ stream)');
dlq
  .command('list')
  .description('list dead letters, oldest first')
  .option('--limit <n>', 'at most this many', '100')
  .option('--json', 'print JSON')
  .action((opts: { limit: string; json?: boolean }) =>
    dlqList({ limit: parseArgs('dlq list', z.coerce.number().int().positive(), opts.limit), json: !!opts.json }),
  );
dlq
  .command('show')
  .description('show one dead letter: its original subject, headers, payload and error')
  .argument('<seq>', 'the dead letter number (from dlq list)')
  .option('--json', 'print JSON')
  .action((seq: string, opts: { json?: boolean }) => dlqShow(parseArgs('dlq show', seqArg, seq), { json: !!opts.json }));
dlq
  .command('retry')
  .description('put a dead letter (or all of them) back on its original subject')
  .argument('[seq]', 'the dead letter number')
  .option('--all', 'retry every retryable dead letter')
  .action((seq: string | undefined, opts: { all?: boolean }) => {
    if (!opts.all && seq === undefined) parseArgs('dlq retry', z.never({ message: 'give a dead letter number or --all' }), seq);
    return dlqRetry(opts.all ? undefined : parseArgs('dlq retry', seqArg, seq), { all: !!opts.all });
  });
dlq.command('purge').description('delete every dead letter').action(dlqPurge);

const events = program.command('events').description('read and re-drive the order events stored in the ORDERS stream');
events
  .command('tail')
  .description('print order events as they are stored (Ctrl-C stops)')
  .argument('[subject]', 'subject filter', 'orders.>')
  .option('--all', 'start from the first stored event instead of new ones')
  .option('--count <n>', 'stop after this many events')
  .option('--json', 'print each event envelope as JSON')
  .action((subject: string, opts: { all?: boolean; count?: string; json?: boolean }) =>
    eventsTail(parseArgs('events tail', subjectFilter, subject), {
      all: !!opts.all,
      count: opts.count === undefined ? undefined : parseArgs('events tail --count', z.coerce.number().int().positive(), opts.count),
      json: !!opts.json,
    }),
  );
events
  .command('replay')
  .description('re-drive stored events of a time range to a subject of your choice or into a consumer of ours')
  .option('--from <time>', 'ISO 8601 start (default: the first stored event)')
  .option('--to <time>', 'ISO 8601 end (default: now)')
  .option('--subject <filter>', 'which events', 'orders.>')
  .option('--to-subject <prefix>', 'publish copies on <prefix>.<original subject>')
  .option('--consumer <name>', 'run them through this consumer (activity); what it already recorded is skipped')
  .option('--dry-run', 'only count what would be replayed')
  .action((opts: { from?: string; to?: string; subject: string; toSubject?: string; consumer?: string; dryRun?: boolean }) => {
    const a = parseArgs(
      'events replay',
      z
        .object({
          from: z.iso.datetime({ offset: true }).pipe(z.coerce.date()).optional(),
          to: z.iso.datetime({ offset: true }).pipe(z.coerce.date()).optional(),
          subject: subjectFilter,
          toSubject: z
            .string()
            .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'a subject prefix like replay')
            .optional(),
          consumer: z.literal('activity').optional(),
        })
        .refine((o) => !!o.toSubject !== !!o.consumer, 'give exactly one of --to-subject or --consumer'),
      opts,
    );
    return eventsReplay({ ...a, dryRun: !!opts.dryRun });
  });

program
  .command('projections')
  .description('read models')
  .command('rebuild')
  .description('rebuild the order read model from the ORDERS stream alone and report every difference from the database (exit 1 if any)')
  .option('--json', 'print JSON')
  .action((opts: { json?: boolean }) => projectionsRebuild({ json: !!opts.json }));

const nats = program.command('nats').description('inspect JetStream without the NATS CLI');
nats
  .command('streams')
  .description('streams with their subjects, replicas (leader, lag), messages, bytes, sequences and consumers (pending, ack pending)')
  .option('--json', 'print JSON')
  .action((opts: { json?: boolean }) => natsStreams({ json: !!opts.json }));
nats
  .command('consumers')
  .description('consumers with their pending, ack pending, redelivered and waiting counts')
  .argument('[stream]', 'only this stream')
  .option('--json', 'print JSON')
  .action((stream: string | undefined, opts: { json?: boolean }) =>
    natsConsumers(stream === undefined ? undefined : parseArgs('nats consumers', z.string().regex(/^[A-Za-z0-9_-]+$/), stream), { json: !!opts.json }),
  );

nats
  .command('auth')
  .description('NATS identities: one nkey user per orderflow process, each with only the subjects it needs')
  .command('init')
  .description('write a nats-server authorization config and one nkey seed per orderflow identity (keeps seeds that exist)')
  .option('--out <dir>', 'where to write them', 'nats-auth')
  .option('--cluster-routes <list>', "also nats-cluster.conf for a cluster: every node's route address, host:port,host:port,…")
  .option('--cluster-listen <host:port>', 'where each node accepts routes (with --cluster-routes)', '0.0.0.0:6222')
  .action((opts: { out: string; clusterRoutes?: string; clusterListen: string }) =>
    natsAuthInit(opts.out, {
      ...(opts.clusterRoutes ? { routes: parseArgs('nats auth init --cluster-routes', hostPorts, opts.clusterRoutes) } : {}),
      clusterListen: parseArgs('nats auth init --cluster-listen', hostPort, opts.clusterListen),
    }),
  );

program
  .command('check')
  .description(
    'count the delivery invariants twice: from the database (accepted vs final, shipped twice, duplicate activity) and from the ORDERS stream; exit 1 if one is broken',
  )
  .option('--json', 'print JSON')
  .option('--db-only', 'count from the database only (NATS not needed)')
  .action((opts: { json?: boolean; dbOnly?: boolean }) => check({ json: !!opts.json, dbOnly: !!opts.dbOnly }));

// Whatever a command did not handle itself ends here: one line with the cause, the fix and where
// it looked (see errors.ts), never a stack trace.
const commandName = () =>
  process.argv
    .slice(2)
    .filter((a) => !a.startsWith('-'))
    .slice(0, 2)
    .join(' ') || 'orderflow';
const where = () => {
  try {
    const c = parseConfig(process.env);
    return { natsUrl: c.NATS_URL, databaseUrl: c.DATABASE_URL };
  } catch {
    return {};
  }
};
/** Runs the command line (bin/orderflow.mjs calls it; importing this module, as a test does, runs nothing). */
export async function run(argv: string[] = process.argv): Promise<void> {
  await program.parseAsync(argv).catch((err: unknown) => fail(commandName(), err, where()));
}
