import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseConfig, type Config } from '../../src/config/env.js';
import type { Kysely } from 'kysely';
import { migrateStorage } from '../../src/storage/open.js';
import type { DB } from '../../src/storage/schema.js';
import { testDb } from './db.js';
import { connect, type NatsConnection } from 'nats';
import { defaultAuthDir, ensureNatsAuth, type AuthFiles } from '../../src/nats/auth/identities.js';
import { connectionOptions } from '../../src/nats/auth/options.js';
import { isIdentityKind, TEST_PERMISSIONS } from '../../src/nats/auth/permissions.js';
import { startNatsServer, type NatsServerProcess } from '../../src/nats/server-process.js';
import { ensureTopology, topologyOptions } from '../../src/nats/topology.js';
import { closeRuntime, createRuntime, type Runtime } from '../../src/runtime/context.js';

/** The operator secret every test stack uses (ORDERFLOW_OPERATOR_TOKEN). */
export const TEST_OPERATOR_TOKEN = 'test-operator-token-0123456789abcdef';
/** Headers that make a request an operator's (a script's: no cookies, so no CSRF token needed). */
export const OPERATOR = { authorization: `Bearer ${TEST_OPERATOR_TOKEN}` } as const;

/**
 * A real nats-server (own free port, own store dir) and a real, migrated SQLite file, per test
 * file. Nothing is mocked: tests talk to the same parts a user runs, and the server runs with
 * the authorization `orderflow start` generates (DATA_DIR/nats-auth). A runtime named after a
 * process kind (web, payments, …) connects as that identity; any other name, and the test's own
 * client (connect()), as the test-only identity `test`, which may do anything.
 */
export interface TestStack {
  dir: string;
  nats: NatsServerProcess;
  auth: AuthFiles;
  config: Config;
  env: Record<string, string>;
  runtime(name: string, identity?: string): Promise<Runtime>;
  /** The test's own way into the database (see helpers/db.ts). */
  db(): Kysely<DB>;
  /** A plain client as `identity` (default: the all-powerful test identity). */
  connect(identity?: string): Promise<NatsConnection>;
  stop(): Promise<void>;
}

export const TEST_IDENTITY = 'test';

export async function startStack(overrides: Record<string, string> = {}): Promise<TestStack> {
  const { dir, auth } = testDirWithAuth();
  // TEST_NATS_LOG_DIR=dir keeps each server's log (permission violations are logged there).
  const logFile = process.env.TEST_NATS_LOG_DIR ? join(process.env.TEST_NATS_LOG_DIR, `nats-${basename(dir)}.log`) : undefined;
  const nats = await startNatsServer({ storeDir: join(dir, 'nats'), configFile: auth.serverConfig, ...(logFile ? { logFile } : {}) });
  return { ...(await stackOn(dir, auth, nats.url, () => nats.stop(), overrides)), nats };
}

/** A temporary DATA_DIR with the generated NATS authorization and the test-only identity in it. */
export function testDirWithAuth(): { dir: string; auth: AuthFiles } {
  const dir = mkdtempSync(join(tmpdir(), 'orderflow-test-'));
  const auth = ensureNatsAuth(defaultAuthDir({ DATA_DIR: dir }), { extra: [{ kind: TEST_IDENTITY, permissions: TEST_PERMISSIONS }] });
  return { dir, auth };
}

/** The database, topology, runtimes and clients of a stack whose NATS runs at `natsUrl` (one server or a comma list). */
export async function stackOn(dir: string, auth: AuthFiles, natsUrl: string, stopNats: () => Promise<void>, overrides: Record<string, string>): Promise<Omit<TestStack, 'nats'>> {
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATABASE_URL: `file:${join(dir, 'orderflow.db')}`,
    DATA_DIR: dir,
    NATS_URL: natsUrl,
    PAYMENT_TIMEOUT_MS: '1500',
    ORDERFLOW_PRETTY: '0',
    ORDERFLOW_OPERATOR_TOKEN: TEST_OPERATOR_TOKEN,
    // Tests send many requests from one address; the tests of the limits set their own.
    RATE_LIMIT_ORDERS_PER_MIN: '0',
    RATE_LIMIT_OPERATOR_PER_MIN: '0',
    ...overrides,
  };
  const config = parseConfig(env);
  await migrateStorage(config.DATABASE_URL);
  let db: Kysely<DB> | undefined;
  const runtimes: Runtime[] = [];
  const setup = await createRuntime('test-setup', config, 'setup');
  await ensureTopology(await setup.nats.default.jetstreamManager(), topologyOptions(config));
  runtimes.push(setup);
  const clients: NatsConnection[] = [];
  return {
    dir,
    auth,
    config,
    env,
    async runtime(name: string, identity?: string) {
      const rt = await createRuntime(name, config, identity ?? (isIdentityKind(name) ? name : TEST_IDENTITY));
      runtimes.push(rt);
      return rt;
    },
    db() {
      return (db ??= testDb(config.DATABASE_URL));
    },
    async connect(identity = TEST_IDENTITY) {
      const nc = await connect({ ...connectionOptions(config, identity), name: `test:${identity}` });
      clients.push(nc);
      return nc;
    },
    async stop() {
      await Promise.allSettled(clients.map((nc) => nc.close()));
      await Promise.allSettled(runtimes.map((rt) => closeRuntime(rt)));
      await db?.destroy();
      await stopNats();
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
