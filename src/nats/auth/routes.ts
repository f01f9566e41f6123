import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The routes between the nodes of a cluster carry every message, and the client authorization
 * does not cover them: without a route password any process that reaches a node's cluster port
 * can join as a route and read everything. A node accepts a route only with this password and
 * presents it on the routes it solicits. It goes in owner-only config files, never on a command
 * line (every local user can read those).
 */
export const ROUTE_USER = 'route';

export const newRoutePassword = () => randomBytes(24).toString('base64url');

/** DIR/route-password, made once and kept (nodes restarted later must agree with the others). */
export function ensureRoutePassword(dir: string): string {
  const file = join(dir, 'route-password');
  if (!existsSync(file)) writeFileSync(file, `${newRoutePassword()}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return readFileSync(file, 'utf8').trim();
}

export interface ClusterBlock {
  /** Cluster name (`--cluster_name`): every node the same. */
  name: string;
  /** host:port this node accepts routes on. */
  listen: string;
  /** host:port of the nodes to solicit routes to (a node listed to itself ignores that route). */
  routes: string[];
  password: string;
}

/** The `cluster { … }` block of a node's nats-server config. */
export function clusterBlock(c: ClusterBlock): string {
  const routes = c.routes.map((r) => `    "nats-route://${ROUTE_USER}:${c.password}@${r}"`);
  return [
    'cluster {',
    `  name: "${c.name}"`,
    `  listen: "${c.listen}"`,
    `  authorization { user: "${ROUTE_USER}", password: "${c.password}" }`,
    '  routes: [',
    ...routes,
    '  ]',
    '}',
    '',
  ].join('\n');
}
