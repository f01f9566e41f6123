import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, isAlive, spawnCli, type Running } from '../helpers/processes.js';
import { waitFor } from '../helpers/stack.js';

const dir = mkdtempSync(join(tmpdir(), 'orderflow-start-'));
const runs: Running[] = [];
afterAll(async () => {
  for (const r of runs) await r.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const READY = [/\[web\]\s+.*listening on/, /\[payments\]\s+.*payment responder ready/, /\[fulfillment\]\s+.*consuming/, /\[activity\]\s+.*consuming/, /\[reconciler\]\s+.*reconciler running/];

async function startAll(name: string, extra: Record<string, string> = {}) {
  const [natsPort, webPort] = [await freePort(), await freePort()];
  const data = join(dir, name);
  const run = spawnCli(
    name,
    ['start'],
    { NATS_URL: `nats://127.0.0.1:${natsPort}`, PORT: String(webPort), DATA_DIR: data, DATABASE_URL: `file:${join(data, 'orderflow.db')}`, LOG_LEVEL: 'info', ...extra },
    { stdin: true },
  );
  runs.push(run);
  await run.waitFor(/started nats-server -js at nats:\/\/127\.0\.0\.1:\d+ .*pid (\d+)/, 20_000);
  const natsPid = Number(/started nats-server.*pid (\d+)/.exec(run.output())![1]);
  // The operator token `orderflow start` generated (read when needed: it is written before the web app starts).
  const operator = () => ({ authorization: `Bearer ${readFileSync(join(data, 'operator-token'), 'utf8').trim()}` });
  return { run, natsPid, webPort, base: `http://127.0.0.1:${webPort}`, operator };
}

/** The pids `status` reports, by process name. */
async function pids(run: Running): Promise<Record<string, number>> {
  const before = run.output().length;
  run.child.stdin!.write('status\n');
  await waitFor(() => /reconciler: \w+/.test(run.output().slice(before)), 5000, 'status');
  const out = run.output().slice(before);
  return Object.fromEntries([...out.matchAll(/\[orderflow\] (\w+): running \(pid (\d+)\)/g)].map((m) => [m[1]!, Number(m[2])]));
}

// Each test starts the whole system as processes: minutes on a busy machine (a bound, not a timing assertion).
describe('orderflow start (npm start)', { timeout: 180_000 }, () => {
  it('starts its own nats-server, runs everything, ships an order, and Ctrl-C stops it all cleanly', async () => {
    const { run, natsPid, base } = await startAll('basic');
    for (const r of READY) await run.waitFor(r, 30_000);
    await run.waitFor(/order form: http:\/\/127\.0\.0\.1:\d+\/orders\/create/, 5000);

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

  it('restarts a crashed worker, leaves a cleanly stopped one down until `start`, and shows the dashboard which is which', async () => {
    const { run, base, operator } = await startAll('manager');
    for (const r of READY) await run.waitFor(r, 30_000);
    const before = await pids(run);

    process.kill(before.fulfillment!, 'SIGKILL');
    await run.waitFor(/fulfillment exited unexpectedly \(SIGKILL\); restarting it in 1 s \(restart 1\)/, 10_000);
    await waitFor(async () => (await pids(run)).fulfillment !== undefined, 20_000, 'fulfillment back');

    // kill -INT of payments: a clean stop, reported and left down; the web app keeps taking orders.
    process.kill(before.payments!, 'SIGINT');
    await run.waitFor(/payments stopped \(code 0\) and stays down; type `start payments`/, 15_000);
    const pending = await fetch(`${base}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ customer_email: 'p@b.co', amount: '3.00' }),
    });
    expect(((await pending.json()) as { status: string }).status).toBe('payment_pending');
    const workers = async () => ((await (await fetch(`${base}/dashboard/data`, { headers: operator() })).json()) as { workers: { name: string; pid: number; status: string }[] }).workers;
    await waitFor(async () => (await workers()).some((w) => w.name === 'payments' && w.pid === before.payments && w.status === 'stopped'), 10_000, 'payments shown as stopped');

    run.child.stdin!.write('start payments\n');
    await waitFor(() => (run.output().match(/payment responder ready/g) ?? []).length >= 2, 30_000, 'payments started again');

    expect(await run.stop('SIGTERM', 20_000)).toBe(0);
    expect(run.output()).toContain('all stopped');
  });

  it('a port in use is one line saying so, and no order form address', async () => {
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
    try {
      const { run } = await startAll('busy', { PORT: String(port) });
      const code = await run.exited;
      expect(code).not.toBe(0);
      expect(run.output()).toMatch(new RegExp(`\\[web\\]\\s+orderflow web: port ${port} on 127\\.0\\.0\\.1 is in use; set PORT`));
      expect(run.output()).not.toContain('order form:');
      expect(run.output()).not.toMatch(/EADDRINUSE|at .*\.ts:\d+/);
    } finally {
      blocker.close();
    }
  });

  it('when the supervisor is SIGKILLed, every child and nats-server notice and stop', async () => {
    const { run, natsPid } = await startAll('orphans');
    for (const r of READY) await run.waitFor(r, 30_000);
    const children = Object.values(await pids(run));
    expect(children).toHaveLength(5);
    run.child.kill('SIGKILL');
    await waitFor(() => [natsPid, ...children].every((pid) => !isAlive(pid)), 20_000, 'every child gone');
  });
});
