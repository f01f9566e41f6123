import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type Config } from '../../src/config/env.js';
import { migrate } from '../../src/db/migrate.js';
import { startNatsServer, type NatsServerProcess } from '../../src/nats/server-process.js';
import { ensureTopology } from '../../src/nats/topology.js';
import { closeRuntime, createRuntime, type Runtime } from '../../src/runtime/context.js';

/** The operator secret every test stack uses (ORDERFLOW_OPERATOR_TOKEN). */
export const TEST_OPERATOR_TOKEN = 'test-operator-token-0123456789abcdef';
/** Headers that make a request an operator's (a script's: no cookies, so no CSRF token needed). */
export const OPERATOR = { authorization: `Bearer ${TEST_OPERATOR_TOKEN}` } as const;

/**
 * A real nats-server (own free port, own store dir) and a real, migrated SQLite file, per test
 * file. Nothing is mocked: tests talk to the same parts a user runs.
 */
export interface TestStack {
  dir: string;
  nats: NatsServerProcess;
  config: Config;
  env: Record<string, string>;
  runtime(name: string): Promise<Runtime>;
  stop(): Promise<void>;
}

export async function startStack(overrides: Record<string, string> = {}): Promise<TestStack> {
  const dir = mkdtempSync(join(tmpdir(), 'orderflow-test-'));
  const nats = await startNatsServer({ storeDir: join(dir, 'nats') });
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATABASE_URL: `file:${join(dir, 'orderflow.db')}`,
    DATA_DIR: dir,
    NATS_URL: nats.url,
    PAYMENT_TIMEOUT_MS: '1500',
    ORDERFLOW_PRETTY: '0',
    ORDERFLOW_OPERATOR_TOKEN: TEST_OPERATOR_TOKEN,
    // Tests send many requests from one address; the tests of the limits set their own.
    RATE_LIMIT_ORDERS_PER_MIN: '0',
    RATE_LIMIT_OPERATOR_PER_MIN: '0',
    ...overrides,
  };
  const config = parseConfig(env);
  migrate(config.DATABASE_URL);
  const runtimes: Runtime[] = [];
  const setup = await createRuntime('test-setup', config);
  await ensureTopology(await setup.nats.default.jetstreamManager(), { ordersMaxAgeDays: config.ORDERS_STREAM_MAX_AGE_DAYS });
  runtimes.push(setup);
  return {
    dir,
    nats,
    config,
    env,
    async runtime(name: string) {
      const rt = await createRuntime(name, config);
      runtimes.push(rt);
      return rt;
    },
    async stop() {
      await Promise.allSettled(runtimes.map((rt) => closeRuntime(rt)));
      await nats.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(check: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
