import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './env.js';

/** Where a generated operator token is kept (owner-only), when ORDERFLOW_OPERATOR_TOKEN is unset. */
export const operatorTokenPath = (dataDir: string) => join(dataDir, 'operator-token');

export interface OperatorToken {
  token: string;
  /** 'env': ORDERFLOW_OPERATOR_TOKEN; 'file': generated once and kept in DATA_DIR. */
  source: 'env' | 'file';
  path?: string;
}

/**
 * The operator secret. From ORDERFLOW_OPERATOR_TOKEN when set; otherwise the one in
 * DATA_DIR/operator-token, generated on first use (256 random bits, file mode 0600), so a local
 * `orderflow start` is secure without any setup and the sign-in link stays the same across restarts.
 */
export function resolveOperatorToken(config: Pick<Config, 'ORDERFLOW_OPERATOR_TOKEN' | 'DATA_DIR'>): OperatorToken {
  if (config.ORDERFLOW_OPERATOR_TOKEN) return { token: config.ORDERFLOW_OPERATOR_TOKEN, source: 'env' };
  const path = operatorTokenPath(config.DATA_DIR);
  mkdirSync(config.DATA_DIR, { recursive: true });
  try {
    // 'wx': exactly one of two processes starting at once creates it; the other reads it below.
    writeFileSync(path, `${randomBytes(32).toString('base64url')}\n`, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  // A copy restored with looser permissions is tightened rather than trusted as is.
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  const token = readFileSync(path, 'utf8').trim();
  if (token.length < 24) throw new Error(`${path} holds no usable operator token; delete it to have a new one generated`);
  return { token, source: 'file', path };
}

/** The link that signs a browser in (the token leaves the address bar at once: /signin redirects). */
export function signInUrl(baseUrl: string, token: OperatorToken): string {
  return token.source === 'file' ? `${baseUrl}/signin?token=${encodeURIComponent(token.token)}` : `${baseUrl}/signin`;
}
