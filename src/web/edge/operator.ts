import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { wantsJson } from '../negotiate.js';
import { originOf } from './origin.js';
import { refuse } from './refuse.js';

/**
 * Who is an operator: a browser with a valid session cookie (set by /signin) or a script sending
 * `Authorization: Bearer <ORDERFLOW_OPERATOR_TOKEN>`. A state change from a browser also needs a
 * CSRF token (@fastify/csrf-protection) and an Origin of our own: the cookie alone proves only
 * that the browser belongs to an operator, not that one of our pages sent the request.
 */
export const SESSION_COOKIE = 'orderflow_operator';
/** A session lasts this long; signing in again starts a new one. */
export const SESSION_MAX_AGE_S = 12 * 3600;

export type OperatorVia = 'bearer' | 'session';

declare module 'fastify' {
  interface FastifyRequest {
    operatorVia: OperatorVia | null;
  }
}

/** Constant-time comparison of two secrets of any length (their SHA-256 digests are compared). */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The key that signs cookies: derived from the operator token, so a new token ends every session. */
export const cookieSecret = (token: string) => createHmac('sha256', token).update('orderflow cookie signing v1').digest('base64url');

export function bearerOf(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  const m = h ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  return m?.[1];
}

export function operatorOf(req: FastifyRequest, reply: FastifyReply, token: string, now = Date.now()): OperatorVia | null {
  const bearer = bearerOf(req);
  if (bearer !== undefined) return sameSecret(bearer, token) ? 'bearer' : null;
  const raw = req.cookies[SESSION_COOKIE];
  if (!raw) return null;
  // @fastify/cookie checks the HMAC signature (in constant time).
  const { valid, value } = reply.unsignCookie(raw);
  if (!valid || !value) return null;
  const issued = Number(value);
  return Number.isFinite(issued) && issued <= now + 60_000 && now - issued < SESSION_MAX_AGE_S * 1000 ? 'session' : null;
}

export function startSession(reply: FastifyReply, now = Date.now()): void {
  reply.setCookie(SESSION_COOKIE, String(now), { signed: true, httpOnly: true, sameSite: 'lax', path: '/', secure: 'auto', maxAge: SESSION_MAX_AGE_S });
}

export function endSession(reply: FastifyReply): void {
  reply.clearCookie(SESSION_COOKIE, { path: '/' });
}

/** A relative path on this site to go back to after signing in (never another site: no open redirect). */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])[\x21-\x7e]*$/.test(next) && !next.startsWith('/signin') ? next : '/dashboard';
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Runs @fastify/csrf-protection's check and says whether it passed, without letting it answer. */
function csrfPasses(app: FastifyInstance, req: FastifyRequest, reply: FastifyReply): Promise<boolean> {
  return new Promise((resolve) => {
    // The plugin answers a failure with reply.send(403 error); this reply stand-in turns that
    // into `false`, so that the refusal carries our code (csrf_invalid) and message.
    const probe = Object.create(reply, {
      send: {
        value: () => {
          resolve(false);
          return probe;
        },
      },
    }) as FastifyReply;
    app.csrfProtection(req, probe, () => resolve(true));
  });
}

/**
 * The checks for a state-changing request a browser may send: a cross-origin Origin is refused;
 * then the CSRF token must be valid. `requireOrigin`: a missing Origin (and Sec-Fetch-Site) is
 * refused too (for operator sessions; every browser that sends cookies on a POST sends one).
 */
export async function checkBrowserWrite(app: FastifyInstance, req: FastifyRequest, reply: FastifyReply, requireOrigin: boolean) {
  const origin = originOf(req);
  if (origin === 'cross' || (requireOrigin && origin === 'unknown'))
    return refuse(
      req,
      reply,
      403,
      'origin_not_allowed',
      `This request came from ${req.headers.origin ?? 'a page that did not say where it is'}, not from a page of ${req.headers.host ?? 'this site'}; use orderflow's own pages, or a script with an Authorization: Bearer header.`,
    );
  if (!(await csrfPasses(app, req, reply)))
    return refuse(req, reply, 403, 'csrf_invalid', 'The form is missing its CSRF token or it has expired; reload the page and submit again.');
  return undefined;
}

/**
 * onRequest hook for operator routes. Without a session: a browser asking for a page is sent to
 * the sign-in page (303), anything else gets 401 (JSON).
 */
export function operatorOnly(token: string) {
  return async function requireOperator(req: FastifyRequest, reply: FastifyReply) {
    const via = operatorOf(req, reply, token);
    req.operatorVia = via;
    if (via) return undefined;
    const streaming = (req.headers.accept ?? '').includes('text/event-stream');
    if (req.method === 'GET' && !wantsJson(req) && !streaming) return reply.redirect(`/signin?next=${encodeURIComponent(req.url)}`, 303);
    reply.header('www-authenticate', 'Bearer realm="orderflow operator"');
    return refuse(
      req,
      reply,
      401,
      'unauthorized',
      bearerOf(req) !== undefined
        ? 'That operator token is wrong; use ORDERFLOW_OPERATOR_TOKEN (or the one in DATA_DIR/operator-token).'
        : 'Operator routes need a session: sign in at /signin, or send Authorization: Bearer <ORDERFLOW_OPERATOR_TOKEN>.',
    );
  };
}

/** preHandler for operator routes: a browser session's state changes need our Origin and a CSRF token. */
export function operatorWrites(app: FastifyInstance) {
  return async function requireOperatorWrite(req: FastifyRequest, reply: FastifyReply) {
    if (!UNSAFE.has(req.method)) return undefined;
    // A bearer token is a header a cross-site page cannot make a browser send (no CORS here).
    if (req.operatorVia === 'bearer') return undefined;
    return checkBrowserWrite(app, req, reply, true);
  };
}
