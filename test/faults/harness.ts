import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { createDb, type Db } from '../../src/db/client.js';
import { DLQ_STREAM } from '../../src/nats/dead-letters.js';
import { startNatsServer, type NatsServerProcess } from '../../src/nats/server-process.js';
import { checkInvariants, type InvariantReport } from '../../src/orders/invariants.js';
import { freePort, runCli, spawnCli, type Running } from '../helpers/processes.js';
import { waitFor } from '../helpers/stack.js';

/**
 * The whole system as a user runs it — a nats-server, `orderflow web` and every worker as separate
 * processes on one SQLite file — with handles to break each part on purpose.
 */
export const PROCESSES = ['web', 'payments', 'activity', 'fulfillment', 'reconciler'] as const;
export type ProcessName = (typeof PROCESSES)[number];

export class System {
  readonly dir = mkdtempSync(join(tmpdir(), 'orderflow-faults-'));
  readonly storeDir = join(this.dir, 'nats');
  nats!: NatsServerProcess;
  natsPort = 0;
  webPort = 0;
  env: Record<string, string> = {};
  procs = new Map<ProcessName, Running>();
  db!: Db;
  /** Ids of orders the web app answered 201 for. */
  accepted = new Set<string>();

  async start(): Promise<void> {
    this.natsPort = await freePort();
    this.webPort = await freePort();
    await this.startNats();
    this.env = {
      NATS_URL: `nats://127.0.0.1:${this.natsPort}`,
      PORT: String(this.webPort),
      DATA_DIR: this.dir,
      DATABASE_URL: `file:${join(this.dir, 'orderflow.db')}`,
      LOG_LEVEL: 'info',
      ORDERFLOW_PRETTY: '0',
      PAYMENT_TIMEOUT_MS: '1000',
      PAYMENT_RETRY_BASE_MS: '200',
      STUCK_AFTER_MS: '3000',
      MAX_DELIVERIES: '3',
    };
    const setup = await runCli(['setup'], this.env);
    if (setup.code !== 0) throw new Error(`setup failed: ${setup.stderr}`);
    this.db = createDb(this.env.DATABASE_URL!);
    await Promise.all(PROCESSES.map((p) => this.startProcess(p)));
  }

  async startNats(): Promise<void> {
    this.nats = await startNatsServer({ port: this.natsPort, storeDir: this.storeDir });
  }

  async startProcess(name: ProcessName): Promise<Running> {
    const run = spawnCli(name, name === 'web' ? ['web'] : ['worker', name], this.env);
    this.procs.set(name, run);
    const ready: Record<ProcessName, RegExp> = {
      web: /listening on/,
      payments: /payment responder ready/,
      activity: /consuming/,
      fulfillment: /consuming/,
      reconciler: /reconciler running/,
    };
    await run.waitFor(ready[name], 30_000);
    return run;
  }

  async kill(name: ProcessName, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.procs.get(name)?.stop(signal);
  }

  /** Processes that exited without being told to. */
  crashed(): string[] {
    return [...this.procs.values()].filter((p) => p.child.exitCode !== null && !p.child.killed).map((p) => `${p.name} (exit ${p.child.exitCode})`);
  }

  async postOrder(amount = '10.00'): Promise<'accepted' | 'refused' | 'failed'> {
    try {
      const r = await fetch(`http://127.0.0.1:${this.webPort}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ customer_email: `load${this.accepted.size}@example.com`, amount }),
        signal: AbortSignal.timeout(10_000),
      });
      if (r.status === 201) {
        this.accepted.add(((await r.json()) as { id: string }).id);
        return 'accepted';
      }
      return 'refused';
    } catch {
      return 'failed'; // web down: the client saw no answer, so nothing was promised
    }
  }

  /**
   * A steady stream of orders: `count` of them at about `perSecond`, with `during` run alongside
   * (the fault). Bounded in count and time.
   */
  async drive(count: number, perSecond: number, during?: () => Promise<void>): Promise<{ accepted: number; failed: number }> {
    let accepted = 0;
    let failed = 0;
    const load = (async () => {
      const inFlight: Promise<void>[] = [];
      for (let i = 0; i < count; i++) {
        inFlight.push(
          this.postOrder(i % 10 === 9 ? '20000.00' : `${(i % 50) + 1}.25`).then((r) => {
            if (r === 'accepted') accepted++;
            else failed++;
          }),
        );
        await new Promise((r) => setTimeout(r, 1000 / perSecond));
      }
      await Promise.all(inFlight);
    })();
    await Promise.all([load, during?.()]);
    return { accepted, failed };
  }

  /** Waits (bounded) until every order in the database is final and the outbox is empty, then reports. */
  async settle(timeoutMs = 60_000): Promise<InvariantReport> {
    let last: InvariantReport | undefined;
    try {
      return await waitFor(async () => {
        last = await checkInvariants(this.db);
        return last.accepted === last.final && last.unpublishedOutbox === 0 ? last : null;
      }, timeoutMs, 'every order final');
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${JSON.stringify(last)}\n${[...this.procs.values()].map((p) => `--- ${p.name}\n${p.output().slice(-2000)}`).join('\n')}`);
    }
  }

  async connect(): Promise<NatsConnection> {
    return connect({ servers: this.env.NATS_URL! });
  }

  async deadLetters(): Promise<number> {
    const nc = await this.connect();
    try {
      return (await (await nc.jetstreamManager()).streams.info(DLQ_STREAM)).state.messages;
    } finally {
      await nc.close();
    }
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.procs.values()].map((p) => p.stop('SIGTERM')));
    await this.db?.$disconnect();
    await this.nats?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One line of counts per scenario, as the issue asks. */
export function reportLine(scenario: string, r: InvariantReport, extra: Record<string, number | string> = {}): string {
  const fields = { accepted: r.accepted, final: r.final, shipped: r.byStatus.shipped ?? 0, declined: r.byStatus.payment_declined ?? 0, shipped_twice: r.shippedTwice, duplicate_activity: r.duplicateActivity, ...extra };
  return `scenario=${scenario} ${Object.entries(fields).map(([k, v]) => `${k}=${v}`).join(' ')}`;
}
