import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { program, workerNames } from '../../src/cli/main.js';
import { envSchema } from '../../src/config/env.js';

/**
 * No Docker engine runs these tests, so the compose file and the Dockerfile are checked by reading
 * them: every orderflow service runs a real `orderflow` command with settings the schema knows,
 * from one image built once, with a healthcheck on /ready.
 */
const ROOT = join(import.meta.dirname, '../..');
interface Service {
  build?: unknown;
  image?: string;
  command?: string[];
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  init?: boolean;
}
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const services = Object.entries(compose.services);
const ours = services.filter(([, s]) => s.image === 'orderflow:local' || s.build !== undefined);
// Settings of the processes themselves, not orderflow's.
const NODE_SETTINGS = new Set(['NODE_OPTIONS']);

function resolveCommand(args: string[]): { command: Command; rest: string[] } {
  let command: Command = program;
  const rest = [...args];
  while (rest.length && !rest[0]!.startsWith('-')) {
    const sub = command.commands.find((c) => c.name() === rest[0]);
    if (!sub) break;
    command = sub;
    rest.shift();
  }
  return { command, rest };
}

describe('docker-compose.yml', () => {
  it('builds the orderflow image once and every other service reuses it', () => {
    const builders = services.filter(([, s]) => s.build !== undefined);
    // nats-auth runs first (NATS waits for its authorization), so it is the one that builds.
    expect(builders.map(([n]) => n)).toEqual(['nats-auth']);
    expect(ours.length).toBeGreaterThanOrEqual(6);
    for (const [name, s] of ours) expect(s.image, name).toBe('orderflow:local');
  });

  it('runs a real orderflow command in each service', () => {
    for (const [name, s] of ours) {
      expect(s.command, name).toBeDefined();
      const { command, rest } = resolveCommand(s.command!);
      expect(command, `${name}: ${s.command!.join(' ')}`).not.toBe(program);
      expect(command.commands, `${name}: ${command.name()} needs a subcommand`).toHaveLength(0);
      const positional = rest.filter(
        (a, i) => !a.startsWith('-') && !(i > 0 && rest[i - 1]!.startsWith('--') && command.options.find((o) => o.long === rest[i - 1])?.required),
      );
      if (command.name() === 'worker') expect(workerNames.options, name).toContain(positional[0]);
      for (const flag of rest.filter((a) => a.startsWith('--')))
        expect(
          command.options.map((o) => o.long),
          `${name}: ${flag}`,
        ).toContain(flag);
    }
  });

  it('sets only environment variables the config schema knows', () => {
    const known = new Set(Object.keys(envSchema.shape));
    for (const [name, s] of ours)
      for (const key of Object.keys(s.environment ?? {})) expect(known.has(key) || NODE_SETTINGS.has(key), `${name}: ${key}`).toBe(true);
  });

  it('checks /ready of the web app and of every worker (on its --metrics-port)', () => {
    for (const [name, s] of ours.filter(([, s]) => s.command?.[0] === 'web' || s.command?.[0] === 'worker')) {
      const test = s.healthcheck?.test.join(' ') ?? '';
      expect(test, name).toMatch(/\/ready/);
      if (s.command![0] === 'worker') {
        const port = s.command![s.command!.indexOf('--metrics-port') + 1];
        expect(port, `${name} serves /ready with --metrics-port`).toBeDefined();
        expect(test, name).toContain(`:${port}/ready`);
      } else expect(test, name).toContain(`:${s.environment?.PORT ?? 3000}/ready`);
    }
  });

  it('runs NATS as a three-node JetStream cluster, each node healthchecked, its own store, routes to the others with a password from a file, clients on 127.0.0.1 only', () => {
    const nodes = services.filter(([, s]) => s.image?.startsWith('nats:'));
    expect(nodes.map(([n]) => n)).toEqual(['nats-1', 'nats-2', 'nats-3']);
    const flag = (s: Service, f: string) => s.command![s.command!.indexOf(f) + 1];
    for (const [name, s] of nodes) {
      expect(s.command, name).toContain('-js');
      expect(flag(s, '--server_name'), name).toBe(name);
      // The cluster block (name, routes, their password) is in the file nats-auth writes, not on the command line.
      expect(flag(s, '-c'), name).toBe('/auth/nats-cluster.conf');
      expect(s.command!.join(' '), name).not.toMatch(/--routes|--cluster |password/);
      expect(s.healthcheck?.test.join(' '), name).toMatch(/healthz/);
      // Published client and monitoring ports are loopback's; the route port is not published.
      for (const p of s.ports ?? []) expect(p, name).toMatch(/^127\.0\.0\.1:\d+:(4222|8222)$/);
      expect(
        s.volumes?.find((v) => v.endsWith(':/data')),
        name,
      ).toBe(`${name}-data:/data`);
    }
    expect(nodes.flatMap(([, s]) => s.ports ?? []).filter((p) => p.endsWith(':4222'))).toHaveLength(3);
    // nats-auth writes that file with a route to every node (and its route password).
    const init = compose.services['nats-auth']!.command!;
    expect(init.slice(0, 3)).toEqual(['nats', 'auth', 'init']);
    expect(flag(compose.services['nats-auth']!, '--cluster-routes')!.split(',')).toEqual(nodes.map(([n]) => `${n}:6222`));
  });

  it('gives every orderflow service all three nodes and R3 streams, started once every node is healthy', () => {
    for (const [name, s] of ours.filter(([n]) => n !== 'nats-auth')) {
      for (const v of ['NATS_URL', 'NATS_ANALYTICS_URL'])
        expect(s.environment?.[v]?.split(','), `${name}: ${v}`).toEqual(['nats://nats-1:4222', 'nats://nats-2:4222', 'nats://nats-3:4222']);
      expect(s.environment?.NATS_STREAM_REPLICAS, name).toBe('3');
      for (const n of ['nats-1', 'nats-2', 'nats-3']) expect(s.depends_on?.[n]?.condition, `${name} waits for ${n}`).toBe('service_healthy');
    }
    expect(compose.services['nats-box']?.environment?.NATS_URL?.split(',')).toHaveLength(3);
  });

  it('runs nats-box under an init, so it stops on SIGTERM', () => {
    expect(compose.services['nats-box']?.init).toBe(true);
  });
});

describe('Dockerfile', () => {
  const file = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const stages = file.split(/^FROM /m).slice(1);
  const final = stages.at(-1)!;

  it('runs a maintained Node LTS, without dev dependencies, as a non-root user', () => {
    expect(final).toMatch(/^node:(22|24)[.-]/);
    expect(file).toMatch(/npm prune --omit=dev/);
    const user = /^USER (\S+)/m.exec(final)?.[1];
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
  });
});
