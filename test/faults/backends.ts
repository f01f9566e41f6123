import { z } from 'zod';
import { type PostgresServer, startPostgres } from '../helpers/postgres.js';
import { type Backend, sqliteBackend } from './harness.js';

/** A backend the fault suite runs its scenarios on, with what it takes to run one and to break it. */
export interface BackendUnderTest {
  backend: Backend;
  /** Once before its scenarios (start a database server), and once after. */
  before?(): Promise<void>;
  after?(): Promise<void>;
  /**
   * Stops the database server, waits `awayMs`, starts it again; resolves with how long it was
   * away. Only for a backend with a server to stop: scenario 8 runs where this is given.
   */
  restart?(awayMs: number): Promise<number>;
}

const sqlite: BackendUnderTest = { backend: sqliteBackend };

/** One real PostgreSQL 15 server for the run (test/helpers/postgres.ts); each system gets a fresh database on it. */
let server: PostgresServer | undefined;
const postgresql: BackendUnderTest = {
  backend: {
    name: 'postgresql',
    database: () => {
      if (!server) throw new Error('the PostgreSQL server is not running (BackendUnderTest.before not called)');
      return server.createDatabase();
    },
  },
  async before() {
    server = await startPostgres();
  },
  async after() {
    await server?.close();
    server = undefined;
  },
  // `immediate`: as a crash or a lost host would, without a clean shutdown; commits already
  // answered must survive it (the server runs with fsync on).
  async restart(awayMs) {
    const s = server!;
    const from = performance.now();
    await s.stop('immediate');
    await new Promise((r) => setTimeout(r, awayMs));
    await s.start();
    return Math.round(performance.now() - from);
  },
};

const ALL = { sqlite, postgresql } as const;

/** FAULTS_BACKENDS=sqlite,… runs the scenarios on those backends only (default: every one). */
const selected = z
  .string()
  .default(Object.keys(ALL).join(','))
  .transform((s) =>
    s
      .split(',')
      .map((b) => b.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.enum(Object.keys(ALL) as [keyof typeof ALL])).min(1))
  .parse(process.env.FAULTS_BACKENDS);

export const BACKENDS: BackendUnderTest[] = selected.map((name) => ALL[name]);
