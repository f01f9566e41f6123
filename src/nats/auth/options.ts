import { existsSync, readFileSync } from 'node:fs';
import { type ConnectionOptions, credsAuthenticator, nkeyAuthenticator } from 'nats';
import type { Config } from '../../config/env.js';
import { identityFile } from './identities.js';
import { inboxPrefix } from './permissions.js';

export type ConnectionName = 'default' | 'analytics';

type Field = 'CREDS' | 'NKEY_SEED_FILE' | 'USER' | 'PASSWORD' | 'TOKEN' | 'TLS_CA' | 'TLS_CERT' | 'TLS_KEY';
const FIELDS: Field[] = ['CREDS', 'NKEY_SEED_FILE', 'USER', 'PASSWORD', 'TOKEN', 'TLS_CA', 'TLS_CERT', 'TLS_KEY'];

/** A credential or TLS file that cannot be read: the message names the variable and the file. */
export class NatsCredentialError extends Error {}

function read(variable: string, path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    throw new NatsCredentialError(`${variable}=${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** `nats://user:pass@host` and `nats://token@host` keep their credentials: they go to the authenticator, not to a log line. */
export function splitServers(url: string): { servers: string[]; user?: string; pass?: string; token?: string; tls: boolean } {
  let user: string | undefined;
  let pass: string | undefined;
  let tls = false;
  const servers = url.split(',').map((raw) => {
    const s = raw.trim();
    if (s.startsWith('tls://')) tls = true;
    const u = new URL(s);
    if (u.username) {
      user = decodeURIComponent(u.username);
      pass = u.password ? decodeURIComponent(u.password) : undefined;
    }
    return `${u.protocol}//${u.host}`;
  });
  if (user !== undefined && pass === undefined) return { servers, token: user, tls };
  return { servers, ...(user !== undefined ? { user, pass } : {}), tls };
}

/** The URL with any credentials replaced by `***`, for messages and logs. */
export const redactUrl = (url: string) => url.replace(/:\/\/[^@/,\s]*@/g, '://***@');

/**
 * How one process (`kind`: web, payments, …, which also names its identity) connects: servers,
 * credentials, TLS and its inbox prefix. Credentials come from, in order: the environment
 * (NATS_CREDS, NATS_NKEY_SEED_FILE, NATS_USER/NATS_PASSWORD, NATS_TOKEN, or the URL); else its own
 * identity file <NATS_IDENTITIES_DIR>/<kind>.nk (as `orderflow start` and `orderflow nats auth init`
 * write them); else none. The analytics connection uses NATS_ANALYTICS_* when any is set, else
 * the same as the default connection.
 */
export function connectionOptions(config: Config, kind: string, which: ConnectionName = 'default'): ConnectionOptions {
  const url = which === 'analytics' ? config.NATS_ANALYTICS_URL : config.NATS_URL;
  const env = config as unknown as Record<string, string | undefined>;
  const own = which === 'analytics' && FIELDS.some((f) => env[`NATS_ANALYTICS_${f}`] !== undefined) ? 'NATS_ANALYTICS_' : 'NATS_';
  const get = (f: Field) => env[`${own}${f}`];
  const parsed = splitServers(url);
  const opts: ConnectionOptions = { servers: parsed.servers, inboxPrefix: inboxPrefix(kind) };

  const creds = get('CREDS');
  const seedFile = get('NKEY_SEED_FILE');
  if (creds) opts.authenticator = credsAuthenticator(read(`${own}CREDS`, creds));
  else if (seedFile) opts.authenticator = nkeyAuthenticator(seed(`${own}NKEY_SEED_FILE`, seedFile));
  else if (get('USER')) Object.assign(opts, { user: get('USER'), pass: get('PASSWORD') });
  else if (get('TOKEN')) opts.token = get('TOKEN');
  else if (parsed.user !== undefined) Object.assign(opts, { user: parsed.user, pass: parsed.pass });
  else if (parsed.token !== undefined) opts.token = parsed.token;
  else {
    const file = identityFile(config, kind);
    if (existsSync(file)) opts.authenticator = nkeyAuthenticator(seed(`the ${kind} identity`, file));
  }

  const [ca, cert, key] = [get('TLS_CA'), get('TLS_CERT'), get('TLS_KEY')];
  if (ca || cert || parsed.tls) {
    // Read here, so that a missing file is named now rather than on the first reconnect.
    opts.tls = {
      ...(ca ? { ca: text(`${own}TLS_CA`, ca) } : {}),
      ...(cert ? { cert: text(`${own}TLS_CERT`, cert) } : {}),
      ...(key ? { key: text(`${own}TLS_KEY`, key) } : {}),
    };
  }
  return opts;
}

const text = (variable: string, path: string) => new TextDecoder().decode(read(variable, path));

function seed(variable: string, path: string): Uint8Array {
  const s = text(variable, path).trim();
  if (!/^SU[A-Z2-7]{50,}$/.test(s)) throw new NatsCredentialError(`${variable} (${path}) does not hold a user nkey seed (a line starting with SU)`);
  return new TextEncoder().encode(s);
}
