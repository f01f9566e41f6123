import { createServer } from 'node:net';
import { ErrorCode, NatsError } from 'nats';
import { describe, expect, it } from 'vitest';
import { CliError, describeFailure, EXIT_CONFIG } from '../../src/cli/errors.js';
import { loadConfig } from '../../src/config/env.js';
import { WorkerHeartbeat } from '../../src/events/contracts.js';
import { openNats } from '../../src/nats/connections.js';
import { subjectMatches } from '../../src/nats/subjects.js';
import { workerStatus } from '../../src/web/dashboard/data.js';

describe('what an operator is told', () => {
  it('a known failure becomes its cause and fix, with where the command looked', () => {
    const inUse = Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:3000'), {
      code: 'EADDRINUSE',
      port: 3000,
      address: '127.0.0.1',
    });
    expect(describeFailure(inUse)).toEqual({ message: expect.stringMatching(/^port 3000 on 127\.0\.0\.1 is in use; set PORT/), exitCode: EXIT_CONFIG });
    // As nats.js throws it: told apart by the JetStream API error code, not the words.
    const noStream = Object.assign(new Error('stream not found'), { code: '404', api_error: { code: 404, err_code: 10059, description: 'stream not found' } });
    expect(describeFailure(noStream, { natsUrl: 'nats://h:1' }).message).toMatch(/orderflow setup.*\[NATS nats:\/\/h:1\]$/);
    expect(describeFailure(Object.assign(new Error('x'), { code: 'P2021' }), { databaseUrl: 'file:/tmp/o.db' }).message).toMatch(
      /run `orderflow setup`.*\[database \/tmp\/o\.db\]$/,
    );
    expect(describeFailure(new CliError('no such thing; do this', 2))).toEqual({ message: 'no such thing; do this', exitCode: 2 });
    expect(describeFailure(new Error('first line\n    at stack (file.ts:1:1)')).message).toBe('first line');
  });

  it('a connect that timed out is "cannot reach"; a request that timed out once connected is not', async () => {
    // Something that accepts the connection and never says a word, as a wrong port or a hung server does.
    const silent = createServer(() => undefined).listen(0, '127.0.0.1');
    await new Promise((r) => silent.once('listening', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const err = await openNats('cli', loadConfig({ NATS_URL: `nats://127.0.0.1:${port}` }), { timeout: 300 }).catch((e: unknown) => e);
      expect((err as NatsError).code).toBe(ErrorCode.Timeout);
      expect(describeFailure(err).message).toMatch(/^cannot reach the NATS server/);
    } finally {
      silent.close();
    }
    // As nats.js rejects a request (a JetStream API call among them) that nobody answered in time.
    expect(describeFailure(NatsError.errorForCode(ErrorCode.Timeout)).message).toMatch(/^the NATS server did not answer in time .*orderflow nats streams/);
  });

  it('subject filters match as NATS matches them', () => {
    expect(subjectMatches('orders.>', 'orders.orders.created')).toBe(true);
    expect(subjectMatches('orders.>', 'orders')).toBe(false);
    expect(subjectMatches('orders.*', 'orders.created')).toBe(true);
    expect(subjectMatches('orders.*', 'orders.a.b')).toBe(false);
    expect(subjectMatches('dlq.>', 'replay.orders.created')).toBe(false);
  });

  it('a process is up while it beats, stopped when it said so, silent after three missed beats', () => {
    const now = 1_000_000;
    expect(workerStatus({ seen_at: now - 1000, state: 'running' }, now)).toBe('up');
    expect(workerStatus({ seen_at: now - 1000 }, now)).toBe('up');
    expect(workerStatus({ seen_at: now - 1000, state: 'stopped' }, now)).toBe('stopped');
    expect(workerStatus({ seen_at: now - WorkerHeartbeat.everyMs * 3, state: 'running' }, now)).toBe('silent');
  });
});
