import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ensureNatsAuth } from '../../nats/auth/identities.js';
import { IDENTITY_KINDS } from '../../nats/auth/permissions.js';
import { clusterBlock, ensureRoutePassword } from '../../nats/auth/routes.js';

/**
 * `orderflow nats auth init --out DIR`: what `orderflow start` generates for its embedded server,
 * for a deployer's own nats-server: DIR/nats-server.conf (the authorization block; `include` it
 * or run `nats-server -c` with it) and DIR/identities/<kind>.nk (one seed per process kind; give
 * each process only its own, as NATS_NKEY_SEED_FILE).
 * With `routes` (a cluster's nodes, host:port of each one's route port), also DIR/nats-cluster.conf:
 * the same authorization plus a cluster block whose routes need DIR/route-password (kept once
 * made); every node runs `nats-server -c DIR/nats-cluster.conf --server_name <its name>`.
 */
export function natsAuthInit(out: string, opts: { routes?: string[]; clusterListen?: string } = {}): void {
  const r = ensureNatsAuth(out);
  const clusterConf = join(r.dir, 'nats-cluster.conf');
  if (opts.routes?.length) {
    const block = clusterBlock({ name: 'orderflow', listen: opts.clusterListen ?? '0.0.0.0:6222', routes: opts.routes, password: ensureRoutePassword(r.dir) });
    writeFileSync(
      clusterConf,
      `${readFileSync(r.serverConfig, 'utf8')}
${block}`,
      { mode: 0o600 },
    );
    chmodSync(clusterConf, 0o600);
  }
  const rel = (p: string) => (relative(process.cwd(), p).startsWith('..') ? p : relative(process.cwd(), p) || '.');
  process.stdout.write(
    [
      `wrote ${rel(r.serverConfig)} (authorization for ${IDENTITY_KINDS.length} identities)`,
      ...IDENTITY_KINDS.map((k) => `  ${rel(`${r.identitiesDir}/${k}.nk`)}${r.created.includes(k) ? ' (new)' : ' (kept)'}`),
      `run: nats-server -js -c ${rel(r.serverConfig)}   (or include it from your own config)`,
      ...(opts.routes?.length
        ? [
            `wrote ${rel(clusterConf)} (routes to ${opts.routes.join(', ')}, password in ${rel(join(r.dir, 'route-password'))}); each node: nats-server -js -c ${rel(clusterConf)} --server_name <name>`,
          ]
        : []),
      `then give each process its seed: NATS_NKEY_SEED_FILE=${rel(r.identitiesDir)}/<web|payments|activity|fulfillment|reconciler|setup|cli>.nk`,
      `the NATS CLI: nats --nkey ${rel(r.identitiesDir)}/setup.nk stream ls`,
      '',
    ].join('\n'),
  );
}
