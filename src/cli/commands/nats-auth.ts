import { relative } from 'node:path';
import { ensureNatsAuth } from '../../nats/auth/identities.js';
import { IDENTITY_KINDS } from '../../nats/auth/permissions.js';

/**
 * `orderflow nats auth init --out DIR`: what `orderflow start` generates for its embedded server,
 * for a deployer's own nats-server: DIR/nats-server.conf (the authorization block; `include` it
 * or run `nats-server -c` with it) and DIR/identities/<kind>.nk (one seed per process kind; give
 * each process only its own, as NATS_NKEY_SEED_FILE).
 */
export function natsAuthInit(out: string): void {
  const r = ensureNatsAuth(out);
  const rel = (p: string) => (relative(process.cwd(), p).startsWith('..') ? p : relative(process.cwd(), p) || '.');
  process.stdout.write(
    [
      `wrote ${rel(r.serverConfig)} (authorization for ${IDENTITY_KINDS.length} identities)`,
      ...IDENTITY_KINDS.map((k) => `  ${rel(`${r.identitiesDir}/${k}.nk`)}${r.created.includes(k) ? ' (new)' : ' (kept)'}`),
      `run: nats-server -js -c ${rel(r.serverConfig)}   (or include it from your own config)`,
      `then give each process its seed: NATS_NKEY_SEED_FILE=${rel(r.identitiesDir)}/<web|payments|activity|fulfillment|reconciler|setup|cli>.nk`,
      `the NATS CLI: nats --nkey ${rel(r.identitiesDir)}/setup.nk stream ls`,
      '',
    ].join('\n'),
  );
}
