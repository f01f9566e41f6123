import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHeartbeat } from '../../src/observability/heartbeat.js';
import type { Runtime } from '../../src/runtime/context.js';
import { startWeb } from '../../src/web/server.js';
import { startActivityWorker } from '../../src/workers/activity.js';
import { startFulfillmentWorker } from '../../src/workers/fulfillment.js';
import { startPaymentResponder } from '../../src/workers/payments.js';
import { launchChromium } from '../helpers/browser.js';
import { startStack, TEST_OPERATOR_TOKEN, type TestStack } from '../helpers/stack.js';

/** A person at the order form, in Debian's Chromium driven by playwright-core. */

let stack: TestStack;
let context: BrowserContext;
let baseUrl: string;
let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
let fulfillmentRuntime: Runtime;
/** Fulfilment starts when a test releases it, so the order page can be seen waiting at "paid". */
let fulfilment: { stop(): Promise<void> } | undefined;
const releaseFulfilment = () => void (fulfilment ??= startFulfillmentWorker(fulfillmentRuntime));
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  stack = await startStack({ PORT: '0' });
  const web: Runtime = await stack.runtime('web');
  const server = await startWeb(web);
  baseUrl = server.url;
  stops.push(server.stop);
  const [payments, activity, fulfillment] = [await stack.runtime('payments'), await stack.runtime('activity'), await stack.runtime('fulfillment')];
  fulfillmentRuntime = fulfillment;
  stops.push((await startPaymentResponder(payments)).stop, startActivityWorker(activity).stop, async () => fulfilment?.stop());
  // As `orderflow worker …` does, so the dashboard's worker list has them.
  for (const rt of [web, payments, activity, fulfillment]) {
    const hb = startHeartbeat(rt);
    stops.push(async () => hb.stop());
  }
  browser = await launchChromium();
  context = browser.context;
});

afterAll(async () => {
  await browser?.close();
  for (const s of stops.reverse()) await s();
  await stack?.stop();
});

describe('the order form in a real browser', () => {
  it('submits an order, sees it wait at paid, and sees it change to shipped by itself when fulfilment runs', async () => {
    // Nobody fulfils yet: the page must render "paid" and then be told, live, that it shipped.
    await fulfilment?.stop();
    fulfilment = undefined;
    const page = await context.newPage();
    // Counts the server-sent events the order page receives (its own listener stays untouched).
    await page.addInitScript(() => {
      const w = window as unknown as { orderEvents: number; EventSource: typeof EventSource };
      w.orderEvents = 0;
      const Native = w.EventSource;
      w.EventSource = class extends Native {
        constructor(url: string | URL, init?: EventSourceInit) {
          super(url, init);
          this.addEventListener('order-event', () => w.orderEvents++);
        }
      };
    });
    await page.goto(`${baseUrl}/orders/create`);
    await page.fill('[name=customer_email]', 'browser@example.com');
    await page.fill('[name=amount]', '42.50');
    await Promise.all([page.waitForURL(/\/orders\/[0-9a-f-]{36}$/), page.click('form [type=submit]')]);
    // A marker that a reload would wipe: the page must reach shipped by itself.
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    // textContent: the label is upper-cased by CSS, innerText would say PAID.
    const status = page.locator('h1 [data-field=status]');
    await expect.poll(() => status.textContent(), { timeout: 10_000, interval: 100 }).toBe('paid');
    expect(await page.locator('[data-field=shipped_at]').innerText()).toBe('—');
    const text = await page.locator('body').innerText();
    expect(text).toMatch(/ORD-[0-9A-Z]{8}/);
    expect(text).toContain('browser@example.com');
    expect(text).toContain('42.50');
    const eventsWhilePaid = await page.evaluate(() => (window as unknown as { orderEvents: number }).orderEvents);

    releaseFulfilment();
    await expect.poll(() => status.textContent(), { timeout: 30_000, interval: 100 }).toBe('shipped');
    expect(await status.getAttribute('class')).toContain('status-shipped');
    expect(await page.locator('[data-field=shipped_at]').innerText()).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    // the shipment reached the page over its event stream, not only by its fallback poll
    expect(await page.evaluate(() => (window as unknown as { orderEvents: number }).orderEvents)).toBeGreaterThan(eventsWhilePaid);
    // the timeline filled in live too
    await expect.poll(() => page.locator('[data-field=timeline]').innerText(), { timeout: 10_000 }).toContain('orders.shipped');
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

describe('the dashboard in a real browser', () => {
  it('follows an order from created to shipped live, without a reload', async () => {
    releaseFulfilment();
    const page = await context.newPage();
    await page.setViewportSize({ width: 1300, height: 1100 });
    // The operator signs in with the token link; it lands on the dashboard.
    await page.goto(`${baseUrl}/signin?token=${TEST_OPERATOR_TOKEN}&next=/dashboard`);
    expect(new URL(page.url()).pathname).toBe('/dashboard');
    await expect.poll(() => page.locator('#live-state').innerText(), { timeout: 10_000 }).toBe('live');
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 7));
    const shippedBefore = Number(await page.locator('[data-status=shipped]').innerText());

    const r = await fetch(`${baseUrl}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ customer_email: 'dash@example.com', amount: '19.99' }),
    });
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
