import type { FastifyRequest } from 'fastify';

/**
 * Which Host headers the web app answers (against DNS rebinding: a page on evil.example whose
 * name is made to resolve to 127.0.0.1 sends `Host: evil.example`), and whether a browser
 * request comes from one of our own pages (Origin, else Sec-Fetch-Site).
 */
export interface HostPolicy {
  allows(host: string | undefined): boolean;
}

const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];

export function splitHost(host: string): { name: string; port: string | undefined } {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return { name: h.slice(0, end + 1), port: h[end + 1] === ':' ? h.slice(end + 2) : undefined };
  }
  const colon = h.lastIndexOf(':');
  return colon === -1 ? { name: h, port: undefined } : { name: h.slice(0, colon), port: h.slice(colon + 1) };
}

/**
 * The names allowed by default are loopback's and HOST's (unless HOST is a wildcard address);
 * ALLOWED_HOSTS adds names (any port) or host:port pairs. The port of a bare name is not checked:
 * rebinding is about the name; a page on another port of the same name is cross-origin and is
 * stopped by the Origin and CSRF checks instead.
 */
export function hostPolicy(config: { HOST: string; ALLOWED_HOSTS: string[] }): HostPolicy {
  const names = new Set(LOOPBACK);
  const pairs = new Set<string>();
  const own = config.HOST.toLowerCase();
  if (own !== '0.0.0.0' && own !== '::') names.add(own.includes(':') && !own.startsWith('[') ? `[${own}]` : own);
  for (const entry of config.ALLOWED_HOSTS) {
    const { name, port } = splitHost(entry);
    if (port) pairs.add(`${name}:${port}`);
    else names.add(name);
  }
  return {
    allows(host) {
      if (!host) return false;
      const { name, port } = splitHost(host);
      return names.has(name) || pairs.has(`${name}:${port ?? ''}`);
    },
  };
}

export type OriginVerdict = 'same' | 'cross' | 'unknown';

/**
 * 'same' when the browser says the request comes from a page of this origin (Origin equal to
 * http(s)://<Host>, or Sec-Fetch-Site: same-origin), 'cross' when it says otherwise, 'unknown' when
 * it says nothing (curl, scripts, old browsers).
 */
export function originOf(req: FastifyRequest): OriginVerdict {
  const origin = req.headers.origin;
  const host = req.headers.host?.toLowerCase();
  const site = req.headers['sec-fetch-site'];
  // "null": a privacy-sensitive context (a sandboxed frame, a strict referrer policy); the
  // browser's own Sec-Fetch-Site (no page can set it) still says where the request came from.
  if (origin === 'null') return site === 'same-origin' ? 'same' : 'cross';
  if (origin !== undefined) {
    if (!host) return 'cross';
    try {
      const u = new URL(origin);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'cross';
      // Through URL both sides, so that `Host: localhost:80` equals `Origin: http://localhost`.
      return u.host === new URL(`${u.protocol}//${host}`).host ? 'same' : 'cross';
    } catch {
      return 'cross';
    }
  }
  if (site === 'same-origin') return 'same';
  // 'none': the user typed the address or used a bookmark; not a page's doing.
  if (site === 'cross-site' || site === 'same-site') return 'cross';
  return 'unknown';
}
