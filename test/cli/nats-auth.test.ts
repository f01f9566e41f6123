import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IDENTITY_KINDS } from '../../src/nats/auth/permissions.js';
import { runCli } from '../helpers/processes.js';

const dir = mkdtempSync(join(tmpdir(), 'orderflow-auth-init-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('orderflow nats auth init', () => {
  it('writes the server authorization and one owner-only seed per identity, and keeps them when run again', async () => {
    const out = join(dir, 'auth');
    const first = await runCli(['nats', 'auth', 'init', '--out', out], {});
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('nats-server.conf');
    const conf = readFileSync(join(out, 'nats-server.conf'), 'utf8');
    expect(statSync(join(out, 'nats-server.conf')).mode & 0o777).toBe(0o600);
    expect(statSync(join(out, 'identities')).mode & 0o777).toBe(0o700);
    const seeds = IDENTITY_KINDS.map((k) => readFileSync(join(out, 'identities', `${k}.nk`), 'utf8'));
    for (const k of IDENTITY_KINDS) expect(statSync(join(out, 'identities', `${k}.nk`)).mode & 0o777).toBe(0o600);
    for (const s of seeds) {
      expect(s).toMatch(/^SU[A-Z2-7]+\n$/);
      expect(conf).not.toContain(s.trim());
    }
    expect(conf.match(/"nkey":"U[A-Z2-7]+"/g)).toHaveLength(IDENTITY_KINDS.length);

    const again = await runCli(['nats', 'auth', 'init', '--out', out], {});
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('(kept)');
    expect(IDENTITY_KINDS.map((k) => readFileSync(join(out, 'identities', `${k}.nk`), 'utf8'))).toEqual(seeds);
  });

  it('with --cluster-routes, writes a cluster config whose routes need a password it keeps, and nats-server accepts it', async () => {
    const out = join(dir, 'cluster-auth');
    const routes = 'nats-1:6222,nats-2:6222,nats-3:6222';
    const first = await runCli(['nats', 'auth', 'init', '--out', out, '--cluster-routes', routes], {});
    expect(first.code).toBe(0);
    const file = join(out, 'nats-cluster.conf');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(out, 'route-password')).mode & 0o777).toBe(0o600);
    const password = readFileSync(join(out, 'route-password'), 'utf8').trim();
    expect(password.length).toBeGreaterThanOrEqual(32);
    const conf = readFileSync(file, 'utf8');
    expect(conf).toContain(readFileSync(join(out, 'nats-server.conf'), 'utf8'));
    expect(conf).toContain(`authorization { user: "route", password: "${password}" }`);
    for (const r of routes.split(',')) expect(conf).toContain(`"nats-route://route:${password}@${r}"`);
    expect(conf).toContain('listen: "0.0.0.0:6222"');
    // nats-server's own check of the file (-t: test the configuration and exit).
    expect(() => execFileSync('nats-server', ['-c', file, '-t'], { stdio: 'pipe' })).not.toThrow();

    const again = await runCli(['nats', 'auth', 'init', '--out', out, '--cluster-routes', routes], {});
    expect(again.code).toBe(0);
    expect(readFileSync(join(out, 'route-password'), 'utf8').trim()).toBe(password);

    const bad = await runCli(['nats', 'auth', 'init', '--out', out, '--cluster-routes', 'nats://x:6222'], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('host:port');
  });
});
