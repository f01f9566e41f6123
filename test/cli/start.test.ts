import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, isAlive, spawnCli, type Running } from '../helpers/processes.js';
import { waitFor } from '../helpers/stack.js';

const dir = mkdtempSync(join(tmpdir(), 'orderflow-start-'));
let run: Running | undefined;
afterAll(async () => {
  await run?.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('orderflow start (npm start)', () => {
  it('starts its own nats-server, runs everything, ships an order, and Ctrl-C stops it all cleanly', async () => {
    const [natsPort, webPort] = [await freePort(), await freePort()];
    run = spawnCli('start', ['start'], {
      NATS_URL: `nats://127.0.0.1:${natsPort}`,
      PORT: String(webPort),
      DATA_DIR: join(dir, 'data'),
      DATABASE_URL: `file:${join(dir, 'data', 'orderflow.db')}`,
      LOG_LEVEL: 'info',
    });
    await run.waitFor(/started nats-server -js at nats:\/\/127\.0\.0\.1:\d+ .*pid (\d+)/, 20_000);
    const natsPid = Number(/pid (\d+)/.exec(run.output())![1]);
    await run.waitFor(/\[web\]\s+.*listening on/, 30_000);
    await run.waitFor(/\[payments\]\s+.*payment responder ready/, 30_000);
    await run.waitFor(/\[fulfillment\]\s+.*consuming/, 30_000);
    await run.waitFor(/\[activity\]\s+.*consuming/, 30_000);
    await run.waitFor(/\[reconciler\]\s+.*reconciler running/, 30_000);

    const base = `http://127.0.0.1:${webPort}`;
    const created = await fetch(`${base}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ customer_email: 'a@b.co', amount: '12.50' }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    await waitFor(async () => {
      const o = (await (await fetch(`${base}/orders/${id}`, { headers: { accept: 'application/json' } })).json()) as { status: string };
      return o.status === 'shipped';
    }, 10_000, 'order shipped');

    // The printed sign-in link (as Jupyter's): it sets the session cookie and leaves the token behind.
    const link = /dashboard \(operators\): (http:\/\/\S+)/.exec(run.output())?.[1];
    expect(link).toMatch(new RegExp(`^${base}/signin\\?token=`));
    expect((await fetch(`${base}/dashboard/data`, { headers: { accept: 'application/json' } })).status).toBe(401);
    const signin = await fetch(link!, { redirect: 'manual' });
    expect(signin.status).toBe(303);
    expect(signin.headers.get('location')).toBe('/dashboard');
    const cookie = signin.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    expect((await fetch(`${base}/dashboard/data`, { headers: { accept: 'application/json', cookie } })).status).toBe(200);

    expect(await run.stop('SIGINT', 20_000)).toBe(0);
    expect(run.output()).toContain('all stopped');
    expect(run.output()).not.toMatch(/exited unexpectedly|killing it/);
    expect(isAlive(natsPid)).toBe(false);
  });
});
