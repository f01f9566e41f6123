import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerProcess, startNatsServer } from '../../src/nats/server-process.js';
import { startWeb } from '../../src/web/server.js';
import { OPERATOR, startStack, type TestStack, waitFor } from '../helpers/stack.js';

/**
 * The live feed is core NATS: while the web app's connection is down it misses events. When the
 * connection is back, an order page is told to re-read its order (an `order-event` with
 * `resync`), and a dashboard is told the feed had a gap (`nats` down, then up).
 */
let stack: TestStack;
let base: string;
let stopWeb: () => Promise<void>;
let restarted: NatsServerProcess | undefined;

beforeAll(async () => {
  stack = await startStack({ PORT: '0' });
  const web = await startWeb(await stack.runtime('web'));
  base = web.url;
  stopWeb = web.stop;
});
afterAll(async () => {
  await stopWeb?.();
  await restarted?.stop();
  await stack?.stop();
});

/** Reads a server-sent-event stream into a string as it arrives, until aborted. */
async function readStream(path: string, headers: Record<string, string> = {}) {
  const abort = new AbortController();
  const res = await fetch(`${base}${path}`, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
  expect(res.status).toBe(200);
  const stream = { text: '', close: () => abort.abort() };
  void (async () => {
    const decoder = new TextDecoder();
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      stream.text += decoder.decode(value, { stream: true });
    }
  })().catch(() => undefined);
  return stream;
}

describe('live views across a NATS reconnect', () => {
  it('an order page is told to re-read its order, and a dashboard that its feed had a gap', async () => {
    const res = await fetch(`${base}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ customer_email: 'ada@example.com', amount: '12.50' }),
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const page = await readStream(`/orders/${id}/stream`);
    const dashboard = await readStream('/dashboard/stream', OPERATOR);
    try {
      await waitFor(() => page.text.includes('event: ready') && dashboard.text.includes('event: ready'), 10_000, 'both streams open');

      await stack.nats.stop();
      await waitFor(() => dashboard.text.includes('"state":"down"'), 15_000, 'the dashboard told the link is down');
      restarted = await startNatsServer({ port: stack.nats.port, storeDir: stack.nats.storeDir, configFile: stack.auth.serverConfig });

      await waitFor(() => /event: order-event\ndata: \{"resync":true\}/.test(page.text), 20_000, 'the order page told to re-read its order');
      await waitFor(() => dashboard.text.includes('"state":"up"'), 20_000, 'the dashboard told the link is back');
    } finally {
      page.close();
      dashboard.close();
    }
  });
});
