import { statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { headers } from 'nats';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operatorTokenPath } from '../../src/config/operator-token.js';
import type { Runtime } from '../../src/runtime/context.js';
import { startWeb } from '../../src/web/server.js';
import { launchChromium } from '../helpers/browser.js';
import { freePort } from '../helpers/processes.js';
import { startStack, type TestStack } from '../helpers/stack.js';

/**
 * The browser as the attacker's tool: a signed-in operator visits a page on another origin (a
 * different loopback port: same site, so the SameSite=Lax cookie IS sent; and localhost: another
 * site) that posts forms and no-cors fetches to every operator route and to POST /orders.
 */

let stack: TestStack;
let rt: Runtime;
let context: BrowserContext;
let base: string;
let signIn: string;
let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
let attacker: Server;
let attackerPort: number;
const stops: (() => Promise<void>)[] = [];

const TARGETS: { path: string; fields: Record<string, string> }[] = [
  { path: '/dashboard/tools/publish', fields: { subject: 'demo.csrf', payload: '{}', inject: 'true' } },
  { path: '/dashboard/tools/publish', fields: { subject: 'orders.declined', payload: '{"forged":true}', inject: 'true' } },
  { path: '/dashboard/tools/request', fields: { subject: 'payments.validate', payload: '{}' } },
  { path: '/dashboard/tools/job', fields: { message: 'csrf', delay_ms: '0' } },
  { path: '/dashboard/dlq/1/retry', fields: {} },
  { path: '/dashboard/dlq/retry-all', fields: {} },
  { path: '/signout', fields: {} },
  { path: '/orders', fields: { customer_email: 'victim@example.com', amount: '99.00' } },
];

/** The attacker's page: a form that submits itself to `target` (and a no-cors fetch of the same, as text/plain). */
function attackPage(target: string, fields: Record<string, string>): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  const inputs = Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`)
    .join('');
  return `<!doctype html><html><body><form id="f" method="post" action="${esc(target)}">${inputs}</form>
<script>
fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: ${JSON.stringify(JSON.stringify(fields))} })
  .catch(() => {}).finally(() => document.getElementById('f').submit());
</script></body></html>`;
}

beforeAll(async () => {
  // No ORDERFLOW_OPERATOR_TOKEN: the web app generates one into DATA_DIR, as a fresh `npm start` does.
  stack = await startStack({ PORT: '0', ORDERFLOW_OPERATOR_TOKEN: '' });
  rt = await stack.runtime('web');
  const web = await startWeb(rt);
  base = web.url;
  signIn = web.signInUrl;
  stops.push(web.stop);
  attackerPort = await freePort();
  attacker = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const t = TARGETS[Number(u.searchParams.get('i'))];
    res.writeHead(t ? 200 : 404, { 'content-type': 'text/html' });
    res.end(t ? attackPage(`${base}${t.path}`, t.fields) : 'no');
  });
  await new Promise<void>((r) => attacker.listen(attackerPort, '127.0.0.1', r));
  stops.push(() => new Promise((r) => attacker.close(() => r())));
  browser = await launchChromium();
  context = browser.context;
});

afterAll(async () => {
  await browser?.close();
  for (const s of stops.reverse()) await s();
  await stack?.stop();
});

/** What an attack could change, counted from NATS and the database, not from the web app's answers. */
async function effects() {
  const jsm = await rt.nats.default.jetstreamManager();
  const streams = await Promise.all(['ORDERS', 'JOBS', 'DLQ'].map(async (s) => (await jsm.streams.info(s)).state.last_seq));
  return { streams, orders: (await rt.storage.statusCounts()).total };
}

async function signedIn(page: Page): Promise<boolean> {
  const r = await page.goto(`${base}/dashboard`);
  return r?.status() === 200 && new URL(page.url()).pathname === '/dashboard';
}

describe('sign-in', () => {
  it('the generated token is kept owner-only, and the printed link signs the browser in and leaves the address bar', async () => {
    expect(statSync(operatorTokenPath(stack.dir)).mode & 0o777).toBe(0o600);
    expect(signIn).toMatch(new RegExp(`^${base}/signin\\?token=[A-Za-z0-9_-]{40,}$`));
    const page = await context.newPage();
    expect(await signedIn(page)).toBe(false);
    expect(new URL(page.url()).pathname).toBe('/signin');
    await page.goto(signIn);
    expect(page.url()).toBe(`${base}/dashboard`);
    expect(await page.locator('h1').innerText()).toContain('Dashboard');
    await expect.poll(() => page.locator('#live-state').innerText(), { timeout: 10_000 }).toBe('live');
    await page.close();
  });
});

describe('a page on another origin, visited by a signed-in operator', () => {
  for (const [label, host] of [
    ['same site, other port (the Lax cookie is sent)', '127.0.0.1'],
    ['another site (localhost)', 'localhost'],
  ] as const) {
    it(`cannot use any operator route nor place an order: ${label}`, async () => {
      const page = await context.newPage();
      expect(await signedIn(page)).toBe(true);
      const before = await effects();
      for (let i = 0; i < TARGETS.length; i++) {
        const target = `${base}${TARGETS[i]!.path}`;
        const statuses: number[] = [];
        const seen = (r: import('playwright-core').Response) => {
          if (r.url() === target && r.request().method() === 'POST') statuses.push(r.status());
        };
        page.on('response', seen);
        const formAnswer = page.waitForResponse((r) => r.url() === target && r.request().method() === 'POST' && r.request().resourceType() === 'document', {
          timeout: 10_000,
        });
        // The page submits itself while loading, which "interrupts" goto: that is the attack working as written.
        await page.goto(`http://${host}:${attackerPort}/?i=${i}`, { waitUntil: 'commit' }).catch(() => undefined);
        await formAnswer;
        await page.waitForLoadState('load');
        page.off('response', seen);
        expect(statuses.length, target).toBeGreaterThanOrEqual(1);
        for (const s of statuses) expect([401, 403], `${TARGETS[i]!.path} answered ${s}`).toContain(s);
      }
      expect(await effects()).toEqual(before);
      await page.close();
      // /signout was among the targets: the operator is still signed in.
      const again = await context.newPage();
      expect(await signedIn(again)).toBe(true);
      await again.close();
    });
  }

  it("the dashboard's own tools still work from its own page", async () => {
    const page = await context.newPage();
    expect(await signedIn(page)).toBe(true);
    const jobsBefore = (await effects()).streams[1]!;
    await page.fill('#job-delay', '0');
    await page.click('#tool-job [type=submit]');
    await expect.poll(() => page.locator('#tool-job output').innerText(), { timeout: 10_000 }).toContain('dispatched');
    expect((await effects()).streams[1]).toBe(jobsBefore + 1);
    await page.click('#tool-publish [type=submit]');
    await expect.poll(() => page.locator('#tool-publish output').innerText(), { timeout: 10_000 }).toContain('demo.hello');

    // A dead-letter retry says what became of it.
    const job = {
      job_id: crypto.randomUUID(),
      name: 'demo',
      payload: { message: 'again', fail: false },
      dispatched_at: new Date().toISOString(),
      run_at: new Date().toISOString(),
      correlation_id: 'dlq-ui',
    };
    const h = headers();
    h.set('Orderflow-Dlq-Subject', 'jobs.fulfillment.demo');
    h.set('Orderflow-Dlq-Consumer', 'jobs-fulfillment');
    h.set('Orderflow-Dlq-Stream', 'JOBS');
    h.set('Orderflow-Dlq-Error', 'failed on purpose');
    // Planted as the test identity: the web app's own identity may not publish dead letters.
    const { seq } = await (await stack.connect()).jetstream().publish('dlq.jobs-fulfillment', new TextEncoder().encode(JSON.stringify(job)), { headers: h });
    await page.reload();
    await page.click(`#dlq button`);
    await expect
      .poll(() => page.locator('#dlq-result').innerText(), { timeout: 10_000 })
      .toBe(`Dead letter #${seq} went back to jobs.fulfillment.demo for jobs-fulfillment.`);
    await page.close();
  });
});
