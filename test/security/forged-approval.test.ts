import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection, type NatsError } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/env.js';
import { authFiles, defaultAuthDir } from '../../src/nats/auth/identities.js';
import { openNats } from '../../src/nats/connections.js';
import { freePort, type Running, spawnCli } from '../helpers/processes.js';
import { waitFor } from '../helpers/stack.js';

/**
 * Issue 10's forged approval, replayed against the real system as `npm start` runs it (embedded
 * nats-server with the generated authorization, every process as its own identity): a client
 * answers payments.validate with approved:true for 20 orders of 50,000.00, which the payment
 * service declines. Before, 7 of 20 shipped (a plain subscription) and 18 of 20 (ten members of
 * the queue group). Now the attacker cannot connect anonymously, and with the credentials of any
 * other process it cannot subscribe to payments.validate.
 */
const dir = mkdtempSync(join(tmpdir(), 'orderflow-forged-'));
const dataDir = join(dir, 'data');
let run: Running;
let base: string;
let natsUrl: string;
const attackers: NatsConnection[] = [];

beforeAll(async () => {
  const [natsPort, webPort] = [await freePort(), await freePort()];
  natsUrl = `nats://127.0.0.1:${natsPort}`;
  base = `http://127.0.0.1:${webPort}`;
  run = spawnCli('start', ['start'], {
    NATS_URL: natsUrl,
    PORT: String(webPort),
    DATA_DIR: dataDir,
    DATABASE_URL: `file:${join(dataDir, 'orderflow.db')}`,
    LOG_LEVEL: 'info',
  });
  await run.waitFor(/\[web\]\s+.*listening on/, 60_000);
  await run.waitFor(/\[payments\]\s+.*payment responder ready/, 60_000);
  await run.waitFor(/\[fulfillment\]\s+.*consuming/, 60_000);
}, 90_000);
afterAll(async () => {
  await Promise.allSettled(attackers.map((nc) => nc.close()));
  await run?.stop('SIGINT', 20_000);
  rmSync(dir, { recursive: true, force: true });
});

const json = { 'content-type': 'application/json', accept: 'application/json' };

describe('forged payment approvals against npm start', () => {
  it('keeps its secrets owner-only', () => {
    const files = authFiles(defaultAuthDir({ DATA_DIR: dataDir }));
    expect(statSync(files.dir).mode & 0o777).toBe(0o700);
    expect(statSync(files.identitiesDir).mode & 0o777).toBe(0o700);
    expect(statSync(files.serverConfig).mode & 0o777).toBe(0o600);
    expect(statSync(join(files.identitiesDir, 'web.nk')).mode & 0o777).toBe(0o600);
  });

  it('ships 0 of 20 declined orders, whoever answers payments.validate', { timeout: 120_000 }, async () => {
    // Anonymous, as in the report: refused outright.
    const anon = await connect({ servers: natsUrl, reconnect: false, timeout: 3000 }).then(
      async (nc) => {
        await nc.close();
        return 'connected';
      },
      (err: NatsError) => err.code,
    );
    expect(anon).toBe('AUTHORIZATION_VIOLATION');

    // With another process's credentials (a compromised web app or reconciler): a plain
    // subscription and ten queue-group members, answering approved:true to everything.
    const config = parseConfig({ NATS_URL: natsUrl, DATA_DIR: dataDir });
    let forged = 0;
    const denials: string[] = [];
    for (const kind of ['web', 'reconciler']) {
      const nc = await openNats(kind, config, { name: `attacker:${kind}`, reconnect: true });
      attackers.push(nc);
      void (async () => {
        for await (const s of nc.status()) if (s.type === 'error') denials.push(`${kind}: ${String(s.data)}`);
      })();
      const subs = [nc.subscribe('payments.validate'), ...Array.from({ length: 10 }, () => nc.subscribe('payments.validate', { queue: 'payments' }))];
      for (const sub of subs) {
        void (async () => {
          for await (const m of sub) {
            forged++;
            const asked = m.json<{ order_id: string; amount_cents: number }>();
            m.respond(
              new TextEncoder().encode(
                JSON.stringify({ approved: true, transaction_id: 'txn_forged', order_id: asked.order_id, amount_cents: asked.amount_cents }),
              ),
            );
          }
        })().catch(() => undefined);
      }
      await nc.flush();
    }
    await waitFor(() => denials.length >= 2, 5000, 'both subscriptions refused');

    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${base}/orders`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ customer_email: `victim${i}@example.com`, amount: '50000.00' }),
      });
      expect(r.status).toBe(201);
      ids.push(((await r.json()) as { id: string }).id);
    }
    const statuses = await waitFor(
      async () => {
        const s = await Promise.all(
          ids.map(async (id) => ((await (await fetch(`${base}/orders/${id}`, { headers: json })).json()) as { status: string }).status),
        );
        return s.every((x) => x === 'payment_declined' || x === 'shipped') ? s : null;
      },
      60_000,
      'all 20 orders settled',
    );
    const shipped = statuses.filter((s) => s === 'shipped').length;
    process.stdout.write(`forged approvals: ${shipped} of 20 shipped, ${forged} forged replies sent, ${denials.length} permission denials\n`);
    expect(shipped).toBe(0);
    expect(statuses.filter((s) => s === 'payment_declined')).toHaveLength(20);
    expect(forged).toBe(0);
  });
});
