import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/env.js';
import { connectionOptions, NatsCredentialError, redactUrl, splitServers } from '../../src/nats/auth/options.js';
import { openNats } from '../../src/nats/connections.js';
import { startNatsServer } from '../../src/nats/server-process.js';

const dir = mkdtempSync(join(tmpdir(), 'orderflow-natsopts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('NATS connection options from the environment', () => {
  it('keeps credentials given in NATS_URL (user:pass or token) and several servers', () => {
    expect(splitServers('nats://u:p%40ss@a:4222, nats://b:4223')).toEqual({ servers: ['nats://a:4222', 'nats://b:4223'], user: 'u', pass: 'p@ss', tls: false });
    expect(splitServers('nats://s3cret@a:4222')).toMatchObject({ servers: ['nats://a:4222'], token: 's3cret' });
    expect(redactUrl('nats://u:p@a:4222,nats://t@b:1')).toBe('nats://***@a:4222,nats://***@b:1');
    const o = connectionOptions(parseConfig({ NATS_URL: 'nats://u:p@a:4222', DATA_DIR: dir }), 'web');
    expect(o).toMatchObject({ servers: ['nats://a:4222'], user: 'u', pass: 'p', inboxPrefix: '_INBOX_web' });
  });

  it('refuses two credentials for one connection, a password without a user, a certificate without its key', () => {
    expect(() => parseConfig({ NATS_TOKEN: 't', NATS_USER: 'u' })).toThrow(ConfigError);
    expect(() => parseConfig({ NATS_URL: 'nats://u:p@a:4222', NATS_NKEY_SEED_FILE: '/x' })).toThrow(/one NATS credential/);
    expect(() => parseConfig({ NATS_ANALYTICS_PASSWORD: 'p' })).toThrow(/NATS_ANALYTICS_PASSWORD: needs NATS_ANALYTICS_USER/);
    expect(() => parseConfig({ NATS_TLS_CERT: '/c' })).toThrow(/give both/);
    expect(() => parseConfig({ NATS_URL: 'nats://a:1,http://b:2' })).toThrow(/NATS_URL/);
  });

  it('names the variable and the file it cannot read, or that does not hold a seed', () => {
    expect(() => connectionOptions(parseConfig({ NATS_NKEY_SEED_FILE: join(dir, 'missing.nk') }), 'web')).toThrow(
      /NATS_NKEY_SEED_FILE=.*missing\.nk: cannot read it \(ENOENT\)/,
    );
    writeFileSync(join(dir, 'bad.nk'), 'not a seed\n');
    expect(() => connectionOptions(parseConfig({ NATS_NKEY_SEED_FILE: join(dir, 'bad.nk') }), 'web')).toThrow(NatsCredentialError);
  });

  it('the analytics connection uses its own credentials when given, else the default ones', () => {
    const both = parseConfig({ NATS_TOKEN: 'a', NATS_ANALYTICS_URL: 'nats://m:4222', NATS_ANALYTICS_USER: 'x', NATS_ANALYTICS_PASSWORD: 'y' });
    expect(connectionOptions(both, 'fulfillment', 'analytics')).toMatchObject({ servers: ['nats://m:4222'], user: 'x', pass: 'y' });
    expect(connectionOptions(parseConfig({ NATS_TOKEN: 'a' }), 'fulfillment', 'analytics')).toMatchObject({ token: 'a' });
  });

  it('connects with the user and password in NATS_URL (they used to be dropped)', async () => {
    const server = await startNatsServer({ storeDir: join(dir, 'store'), extraArgs: ['--user', 'orderflow', '--pass', 'pw'] });
    try {
      const good = await openNats('cli', parseConfig({ NATS_URL: server.url.replace('nats://', 'nats://orderflow:pw@'), DATA_DIR: dir }));
      await good.close();
      await expect(openNats('cli', parseConfig({ NATS_URL: server.url, DATA_DIR: dir }))).rejects.toThrow(/refused identity "cli" \(authorization violation\)/);
    } finally {
      await server.stop();
    }
  });
});
