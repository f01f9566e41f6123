import { z } from 'zod';
import { sqliteBackend, type Backend } from './harness.js';

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

const ALL = { sqlite } as const;

/** FAULTS_BACKENDS=sqlite,… runs the scenarios on those backends only (default: every one). */
const selected = z
  .string()
  .default(Object.keys(ALL).join(','))
  .transform((s) => s.split(',').map((b) => b.trim()).filter(Boolean))
  .pipe(z.array(z.enum(Object.keys(ALL) as [keyof typeof ALL])).min(1))
  .parse(process.env.FAULTS_BACKENDS);

export const BACKENDS: BackendUnderTest[] = selected.map((name) => ALL[name]);
