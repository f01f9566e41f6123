import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/runtime/context.js';
import { startWeb } from '../../src/web/server.js';
import { startActivityWorker } from '../../src/workers/activity.js';
import { startFulfillmentWorker } from '../../src/workers/fulfillment.js';
import { startPaymentResponder } from '../../src/workers/payments.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { testEnvSchema } from '../../src/config/env.js';
import { startHeartbeat } from '../../src/observability/heartbeat.js';

/** A person at the order form, in Debian's Chromium driven by playwright-core. */
const CHROMIUM = testEnvSchema.parse(process.env).CHROMIUM_PATH;

let stack: TestStack;
let context: BrowserContext;
let baseUrl: string;
let profile: string;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  stack = await startStack({ PORT: '0' });
  const web: Runtime = await stack.runtime('web');
  const server = await startWeb(web);
  baseUrl = server.url;
  stops.push(server.stop);
  const [payments, activity, fulfillment] = [await stack.runtime('payments'), await stack.runtime('activity'), await stack.runtime('fulfillment')];
  stops.push((await startPaymentResponder(payments)).stop, startActivityWorker(activity).stop, startFulfillmentWorker(fulfillment).stop);
  // As `orderflow worker …` does, so the dashboard's worker list has them.
  for (const rt of [web, payments, activity, fulfillment]) {
    const hb = startHeartbeat(rt);
    stops.push(async () => hb.stop());
  }
  profile = mkdtempSync(join(tmpdir(), 'orderflow-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

afterAll(async () => {
  await context?.close();
  for (const s of stops.reverse()) await s();
  await stack?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

describe('the dashboard in a real browser', () => {
  it('follows an order from created to shipped live, without a reload', async () => {
    const page = await context.newPage();
    await page.setViewportSize({ width: 1300, height: 1100 });
    await page.goto(`${baseUrl}/dashboard`);
    await expect.poll(() => page.locator('#live-state').innerText(), { timeout: 10_000 }).toBe('live');
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 7));
    const shippedBefore = Number(await page.locator('[data-status=shipped]').innerText());

    const r = await fetch(`${baseUrl}/orders`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ customer_email: 'dash@example.com', amount: '19.99' }) });
    const { reference } = (await r.json()) as { reference: string };

    await expect.poll(() => page.locator('#events').innerText(), { timeout: 10_000 }).toContain(`${reference} shipped`);
    expect(await page.locator('#events').innerText()).toContain(`${reference} created for dash@example.com`);
    await expect.poll(async () => Number(await page.locator('[data-status=shipped]').innerText()), { timeout: 10_000 }).toBe(shippedBefore + 1);
    expect(await page.locator('#streams').innerText()).toContain('ORDERS');
    expect(await page.locator('#streams').innerText()).toContain('jobs-fulfillment');
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(7);

    // a job that fails on purpose reaches the dead letters, visibly
    await page.check('#tool-job [name=fail]');
    await page.click('#tool-job [type=submit]');
    await expect.poll(async () => Number(await page.locator('#dlq-count').innerText()), { timeout: 15_000 }).toBe(1);
    expect(await page.locator('#dlq').innerText()).toContain('failed on purpose');
    if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: join(process.env.SCREENSHOT_DIR, 'dashboard.png'), fullPage: true });
  });
});

describe('the order form in a real browser', () => {
  it('submits an order and watches it reach shipped without reloading', async () => {
    const page = await context.newPage();
    await page.goto(`${baseUrl}/orders/create`);
    await page.fill('[name=customer_email]', 'browser@example.com');
    await page.fill('[name=amount]', '42.50');
    await Promise.all([page.waitForURL(/\/orders\/[0-9a-f-]{36}$/), page.click('form [type=submit]')]);
    // A marker that a reload would wipe: the page must reach shipped by itself.
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));

    await expect.poll(async () => page.locator('body').innerText(), { timeout: 10_000, interval: 200 }).toMatch(/shipped/i);
    const text = await page.locator('body').innerText();
    expect(text).toMatch(/ORD-[0-9A-Z]{8}/);
    expect(text).toContain('browser@example.com');
    expect(text).toContain('42.50');
    // the timeline filled in live too
    await expect.poll(async () => page.locator('body').innerText(), { timeout: 10_000 }).toContain('orders.shipped');
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: join(process.env.SCREENSHOT_DIR, 'order.png'), fullPage: true });
  });

  it('shows field errors and keeps the input on a bad submission', async () => {
    const page = await context.newPage();
    await page.goto(`${baseUrl}/orders/create`);
    await page.fill('[name=customer_email]', 'not-an-email');
    await page.fill('[name=amount]', '12.345');
    await page.click('form [type=submit]');
    await page.waitForLoadState();
    expect(await page.inputValue('[name=customer_email]')).toBe('not-an-email');
    expect(await page.inputValue('[name=amount]')).toBe('12.345');
    const text = await page.locator('body').innerText();
    expect(text).toContain('Enter a valid email address');
    expect(text).toContain('at most two decimals');
    if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: join(process.env.SCREENSHOT_DIR, 'form-errors.png'), fullPage: true });
  });
});
