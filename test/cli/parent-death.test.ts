import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerProcess, startNatsServer } from '../../src/nats/server-process.js';
import { isAlive, runCli } from '../helpers/processes.js';
import { waitFor } from '../helpers/stack.js';

let dir: string;
let nats: NatsServerProcess;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'orderflow-parent-death-'));
  nats = await startNatsServer({ storeDir: join(dir, 'nats') });
  await runCli(['setup'], { NATS_URL: nats.url, DATA_DIR: dir, DATABASE_URL: `file:${dir}/o.db` }, 60_000);
});
afterAll(async () => {
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('processes the tests start', () => {
  it('stop by themselves when the test process that started them is SIGKILLed', { timeout: 90_000 }, async () => {
    const parent = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../helpers/fixtures/spawn-worker.ts'), nats.url, dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const { pid } = await new Promise<{ pid: number }>((resolve) => createInterface({ input: parent.stdout! }).once('line', (l) => resolve(JSON.parse(l))));
    expect(isAlive(pid)).toBe(true);
    parent.kill('SIGKILL');
    await waitFor(() => !isAlive(pid), 20_000, 'the worker to stop after its parent died').catch((e: Error) => {
      // Say what the worker was doing (its state letter and parent, from /proc) rather than only that it was there.
      let stat = 'no /proc entry';
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ').slice(0, 2).join(' ppid ') ?? stat;
      } catch {}
      throw new Error(`${e.message}; worker ${pid}: state ${stat}`);
    });
  });
});
