import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, freePort, type Running, spawnCli } from '../helpers/processes.js';

/**
 * The README's code blocks marked `bash runnable` run here, as a reader would paste them, against
 * a system started with `orderflow start` (its own nats-server, free ports: `localhost:3000` in
 * the README becomes the web app's port). A block that stops working fails this test.
 */
const ROOT = join(import.meta.dirname, '../..');
const blocks = [...readFileSync(join(ROOT, 'README.md'), 'utf8').matchAll(/```bash runnable\n([\s\S]*?)```/g)].map((m) => m[1]!);

const dir = mkdtempSync(join(tmpdir(), 'orderflow-readme-'));
let run: Running;
let env: Record<string, string>;
let port: number;

beforeAll(async () => {
  const natsPort = await freePort();
  port = await freePort();
  env = {
    NATS_URL: `nats://127.0.0.1:${natsPort}`,
    PORT: String(port),
    DATA_DIR: join(dir, 'data'),
    DATABASE_URL: `file:${join(dir, 'data', 'orderflow.db')}`,
    LOG_LEVEL: 'warn',
    ORDERFLOW_PRETTY: '0',
  };
  run = spawnCli('start', ['start'], env);
  await run.waitFor(/order form: http/, 60_000);
  await run.waitFor(/\[reconciler\]/, 30_000).catch(() => undefined);
}, 90_000);
afterAll(async () => {
  await run?.stop('SIGTERM', 15_000);
  rmSync(dir, { recursive: true, force: true });
});

describe('the README’s runnable examples', { timeout: 150_000 }, () => {
  it('has some', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    expect(blocks.join('\n')).toMatch(/npx orderflow/);
    expect(blocks.join('\n')).toMatch(/curl/);
  });

  it('`npx orderflow` runs the project’s command', () => {
    const r = spawnSync('npx', ['orderflow', '--version'], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
  });

  it.each(blocks.map((b, i) => [i + 1, b] as const))('block %i works', (_i, block) => {
    const script = block.replaceAll('localhost:3000', `127.0.0.1:${port}`);
    // npx orderflow resolves to bin/orderflow.mjs (checked above); calling it directly saves npm's
    // few seconds of start-up per line.
    const prelude = `npx() { if [ "$1" = orderflow ]; then shift; node ${JSON.stringify(BIN)} "$@"; else command npx "$@"; fi; }\n`;
    const r = spawnSync('bash', ['-euo', 'pipefail', '-c', prelude + script], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, `${script}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`).toBe(0);
  });
});
