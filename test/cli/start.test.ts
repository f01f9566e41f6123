import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/env.js';
import { OrderEvents } from '../../src/events/contracts.js';
import { connectionOptions } from '../../src/nats/auth/options.js';
import { freePort, isAlive, type Running, runCli, spawnCli } from '../helpers/processes.js';
import { waitFor } from '../helpers/stack.js';

const dir = mkdtempSync(join(tmpdir(), 'orderflow-start-'));
const runs: Running[] = [];
afterAll(async () => {
  for (const r of runs) await r.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const READY_LINE = {
  web: 'listening on',
  payments: 'payment responder ready',
  fulfillment: 'consuming',
  activity: 'consuming',
  reconciler: 'reconciler running',
};
/** The line each instance prints once it works (`web`, or `web-2` under --scale). */
const ready = (instance: string) => new RegExp(`\\[${instance}\\]\\s+.*${READY_LINE[instance.replace(/-\d+$/, '') as keyof typeof READY_LINE]}`);
const READY = Object.keys(READY_LINE).map(ready);

async function startAll(name: string, extra: Record<string, string> = {}, args: string[] = [], opts: { detached?: boolean } = {}) {
  const [natsPort, webPort] = [await freePort(), await freePort()];
  const data = join(dir, name);
  const env = {
    NATS_URL: `nats://127.0.0.1:${natsPort}`,
    PORT: String(webPort),
    DATA_DIR: data,
    DATABASE_URL: `file:${join(data, 'orderflow.db')}`,
    LOG_LEVEL: 'info',
    ...extra,
  };
  const run = spawnCli(name, ['start', ...args], env, { stdin: true, ...opts });
  runs.push(run);
  // A bound for a busy machine (tsx compiles the sources first), not a timing assertion.
  await run.waitFor(/started nats-server -js at nats:\/\/127\.0\.0\.1:\d+ .*pid (\d+)/, 60_000);
  const natsPid = Number(/started nats-server.*pid (\d+)/.exec(run.output())![1]);
  // The operator token `orderflow start` generated (read when needed: it is written before the web app starts).
  const operator = () => ({ authorization: `Bearer ${readFileSync(join(data, 'operator-token'), 'utf8').trim()}` });
  return { run, natsPid, webPort, base: `http://127.0.0.1:${webPort}`, operator, env };
}

/** The pids `status` reports, by instance name (`last`: the instance it lists last). */
async function pids(run: Running, last = 'reconciler'): Promise<Record<string, number>> {
  const before = run.output().length;
  run.child.stdin!.write('status\n');
  await waitFor(() => new RegExp(`\\] ${last}: \\w+`).test(run.output().slice(before)), 5000, 'status');
  const out = run.output().slice(before);
  return Object.fromEntries([...out.matchAll(/\[orderflow\] ([\w-]+): running \(pid (\d+)\)/g)].map((m) => [m[1]!, Number(m[2])]));
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
    await waitFor(
      async () => {
        const o = (await (await fetch(`${base}/orders/${id}`, { headers: { accept: 'application/json' } })).json()) as { status: string };
        return o.status === 'shipped';
      },
      10_000,
      'order shipped',
    );

    // The printed sign-in link (as Jupyter's): it sets the session cookie and leaves the token behind.
    const link = /dashboard \(operators\): (http:\/\/\S+)/.exec(run.output())?.[1];
    expect(link).toMatch(new RegExp(`^${base}/signin\\?token=`));
    expect((await fetch(`${base}/dashboard/data`, { headers: { accept: 'application/json' } })).status).toBe(401);
    const signin = await fetch(link!, { redirect: 'manual' });
    expect(signin.status).toBe(303);
    expect(signin.headers.get('location')).toBe('/dashboard');
    const cookie = signin.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
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
    // The workers nobody waits on yield the CPU (BACKGROUND_NICE); those on a POST's path do not.
    const own = getPriority();
    expect(Object.fromEntries(Object.entries(before).map(([n, pid]) => [n, getPriority(pid)]))).toEqual({
      web: own,
      payments: own,
      activity: Math.max(own, 10),
      fulfillment: own,
      reconciler: Math.max(own, 10),
    });

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
    const workers = async () =>
      ((await (await fetch(`${base}/dashboard/data`, { headers: operator() })).json()) as { workers: { name: string; pid: number; status: string }[] }).workers;
    await waitFor(
      async () => (await workers()).some((w) => w.name === 'payments' && w.pid === before.payments && w.status === 'stopped'),
      10_000,
      'payments shown as stopped',
    );

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

  it('a bad --scale is one line naming it, before anything starts', async () => {
    for (const [value, says] of [
      ['billing=2', /^orderflow start --scale: "billing=2": unknown process kind "billing" \(kinds: web, payments/],
      ['web=0', /^orderflow start --scale: "web=0": at least 1 copy/],
      ['web=x', /^orderflow start --scale: "web=x": the number of copies must be a whole number/],
    ] as const) {
      const r = await runCli(['start', '--scale', value], { DATA_DIR: join(dir, 'bad-scale'), NATS_URL: 'nats://127.0.0.1:1' });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(says);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
    }
  });

  it('--scale runs N copies of each kind: one port for the web copies, every order shipped once, each instance in `status` and on the dashboard, and a Ctrl-C stops them all cleanly', {
    timeout: 420_000,
  }, async () => {
    const kinds = Object.keys(READY_LINE);
    const instances = kinds.flatMap((k) => [`${k}-1`, `${k}-2`]);
    const { run, natsPid, base, operator, env } = await startAll('scale', {}, ['--scale', kinds.map((k) => `${k}=2`).join(',')], { detached: true });
    // Ten Node processes starting at once on two shared cores: a bound, not a timing assertion.
    for (const i of instances) await run.waitFor(ready(i), 150_000);
    await run.waitFor(/order form: http:\/\/127\.0\.0\.1:\d+\/orders\/create/, 5000);
    expect(run.output().match(/order form:/g)).toHaveLength(1);

    const before = await pids(run, 'reconciler-2');
    expect(Object.keys(before).sort()).toEqual([...instances].sort());

    // Both web copies answer on the one port (a new connection each time; the primary deals them out in turn).
    const servedBy = () =>
      new Promise<string>((resolve, reject) =>
        get(`${base}/health`, { agent: false }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve((JSON.parse(body) as { process: string }).process));
        }).on('error', reject),
      );
    const served = new Set<string>();
    let asked = 0;
    for (; asked < 20 && served.size < 2; asked++) served.add(await servedBy());
    expect([...served].sort()).toEqual(['web-1', 'web-2']);
    // /metrics on the one port is the web copies' figures summed, whichever copy answers the scrape.
    const healthCount = async () => {
      const text = await (await fetch(`${base}/metrics`)).text();
      expect(text.match(/^orderflow_orders\{status="shipped"\}/gm)).toHaveLength(1);
      return Number(/^orderflow_http_request_duration_seconds_count\{method="GET",route="\/health",status="200"\} (\d+)/m.exec(text)?.[1]);
    };
    expect([await healthCount(), await healthCount(), await healthCount()]).toEqual([asked, asked, asked]);

    // Shipments counted from the wire (the `cli` identity may watch orders.>), by distinct event id per order.
    const nc = await connect({ ...connectionOptions(parseConfig({ ...process.env, ...env }), 'cli'), name: 'test:scale-wire' });
    const shippedOnWire = new Map<string, Set<string>>();
    nc.subscribe(OrderEvents.shipped.subject, {
      callback: (err, m) => {
        if (err) return;
        const e = JSON.parse(new TextDecoder().decode(m.data)) as { event_id: string; data: { order_id: string } };
        shippedOnWire.set(e.data.order_id, (shippedOnWire.get(e.data.order_id) ?? new Set()).add(e.event_id));
      },
    });
    await nc.flush();
    try {
      const placed: { id: string; approved: boolean }[] = [];
      for (let i = 0; i < 40; i++) {
        // Every eighth is declined by the payment policy (at least 10,000.00).
        const amount = i % 8 === 7 ? '12000.00' : `${1 + (i % 5)}.25`;
        const r = await fetch(`${base}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify({ customer_email: `s${i}@b.co`, amount }),
        });
        expect(r.status).toBe(201);
        placed.push({ id: ((await r.json()) as { id: string }).id, approved: amount !== '12000.00' });
      }
      const statusOf = async (id: string) =>
        ((await (await fetch(`${base}/orders/${id}`, { headers: { accept: 'application/json' } })).json()) as { status: string }).status;
      for (const o of placed)
        await waitFor(async () => (await statusOf(o.id)) === (o.approved ? 'shipped' : 'payment_declined'), 60_000, `order ${o.id} final`);
      const approved = placed.filter((o) => o.approved);
      await waitFor(() => approved.every((o) => shippedOnWire.has(o.id)), 10_000, 'every shipment seen on the wire');
      await nc.flush();
      expect(approved.filter((o) => shippedOnWire.get(o.id)!.size !== 1)).toEqual([]);
      expect(placed.filter((o) => !o.approved && shippedOnWire.has(o.id))).toEqual([]);
    } finally {
      await nc.close();
    }

    // The dashboard shows every instance, up.
    type Row = { name: string; instance: string; pid: number; status: string };
    const rows = async () => ((await (await fetch(`${base}/dashboard/data`, { headers: operator() })).json()) as { workers: Row[] }).workers;
    const all = await waitFor(
      async () => {
        const w = await rows();
        return instances.every((i) => w.some((r) => r.instance === i && r.pid === before[i] && r.status === 'up')) ? w : null;
      },
      20_000,
      'every instance up on the dashboard',
    );
    expect(all.map((r) => r.instance).sort()).toEqual([...instances].sort());

    // Restarts are per instance: payments-2 gets a new pid, payments-1 keeps its own.
    run.child.stdin!.write('restart payments-2\n');
    await run.waitFor(/payments-2 stopped \(code 0\); starting it again/, 20_000);
    const after = await waitFor(
      async () => {
        const p = await pids(run, 'reconciler-2');
        return p['payments-2'] && p['payments-2'] !== before['payments-2'] ? p : null;
      },
      30_000,
      'payments-2 running again',
    );
    expect(after['payments-1']).toBe(before['payments-1']);
    await waitFor(
      async () => (await rows()).some((r) => r.instance === 'payments-2' && r.pid === after['payments-2'] && r.status === 'up'),
      20_000,
      'the restarted copy on the dashboard',
    );

    // `restart web` rolls, one copy at a time: the port answers every request meanwhile.
    const listening = (i: string) => run.output().match(new RegExp(`\\[${i}\\]\\s+.*listening on`, 'g'))?.length ?? 0;
    const [l1, l2] = [listening('web-1'), listening('web-2')];
    let [answered, failed, polling] = [0, [] as string[], true];
    const poll = (async () => {
      while (polling)
        await servedBy().then(
          () => answered++,
          (err: Error) => failed.push(err.message),
        );
    })();
    run.child.stdin!.write('restart web\n');
    await waitFor(() => listening('web-1') > l1 && listening('web-2') > l2, 90_000, 'both web copies listening again');
    polling = false;
    await poll;
    expect(failed).toEqual([]);
    expect(answered).toBeGreaterThan(0);
    expect(run.output()).toMatch(/restarting web-1[\s\S]*web-1 stopped[\s\S]*restarting web-2/);

    // Ctrl-C as a terminal sends it: SIGINT to the whole process group, where the web copies (cluster
    // workers) are too. Each is asked twice (terminal and supervisor) and still drains and exits 0.
    process.kill(-run.child.pid!, 'SIGINT');
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('all stopped');
    expect(run.output()).not.toMatch(/exited unexpectedly|exited with code|killing it|second SIG/);
    expect(run.output().match(/\[web-\d\]\s+.*\bstopped\b/g)?.length).toBeGreaterThanOrEqual(2);
    // nats-server is in that process group too: it ignores the terminal's SIGINT and stops after
    // every process drained, so none of them lost its connection on the way out.
    expect(run.output()).not.toMatch(/nats disconnect/);
    expect(isAlive(natsPid)).toBe(false);
  });

  it('with --scale, every copy (the web cluster workers too) stops when the supervisor is SIGKILLed', async () => {
    const { run, natsPid } = await startAll('scale-orphans', {}, ['--scale', 'web=2,payments=2']);
    for (const i of ['web-1', 'web-2', 'payments-1', 'payments-2', 'activity', 'fulfillment', 'reconciler']) await run.waitFor(ready(i), 150_000);
    const children = Object.values(await pids(run));
    expect(children).toHaveLength(7);
    run.child.kill('SIGKILL');
    await waitFor(() => [natsPid, ...children].every((pid) => !isAlive(pid)), 30_000, 'every child gone');
  });
});
