import type { Socket } from 'node:net';
import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import rateLimit, { type RateLimitOptions } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler, preHandlerHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import helmetHeaders from 'helmet';
import type { Config } from '../../../config/env.js';
import { checkBrowserWrite, cookieSecret, operatorOf, operatorOnly, operatorWrites } from '../../edge/operator.js';
import { hostPolicy, originOf } from '../../edge/origin.js';
import { EdgeError, type EdgeErrorCode, edgeBody, refuse } from '../../edge/refuse.js';

/**
 * Security headers. The CSP allows only our own scripts and styles (no inline ones).
 * upgrade-insecure-requests is off: orderflow is served over plain HTTP on loopback by default,
 * and a TLS-terminating proxy in front of it sets its own policy.
 */
const HELMET: Parameters<typeof helmetHeaders>[0] = {
  contentSecurityPolicy: {
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      formAction: ["'self'"],
      upgradeInsecureRequests: null,
    },
  },
  strictTransportSecurity: false,
  // Not helmet's no-referrer: with it Chromium sends `Origin: null` on our own form posts.
  // same-origin still sends nothing to other sites.
  referrerPolicy: { policy: 'same-origin' },
};

/**
 * Helmet's headers, computed once: the policy is the same for every answer (no per-request CSP
 * nonces), and @fastify/helmet would run helmet() anew, parsing the CSP, on every request. Set
 * by a hook on every answer, and by hand on the ones Fastify gives before any hook runs (a
 * request line or headers it cannot parse, a URL too long).
 */
export const staticSecurityHeaders: Record<string, string> = (() => {
  const headers: Record<string, string> = {};
  const res = {
    setHeader: (k: string, v: string | number | string[]) => void (headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v)),
    removeHeader: (k: string) => void delete headers[k.toLowerCase()],
    getHeader: (k: string) => headers[k.toLowerCase()],
  };
  helmetHeaders(HELMET)({} as never, res as never, () => undefined);
  return headers;
})();

/** Fastify's clientErrorHandler: its answers, with the security headers and our error shape. */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, text, code, message]: [number, string, EdgeErrorCode, string] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'request_timeout', 'The request did not arrive in time (HTTP_REQUEST_TIMEOUT_MS); send it in one go.']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'headers_too_large', 'The request line and headers exceed 16 KiB; send fewer or shorter headers.']
        : [400, 'Bad Request', 'bad_request', 'The request is not valid HTTP/1.1; check the request line and headers.'];
  const body = JSON.stringify(edgeBody(code, message));
  if (socket.writable) {
    const headers = Object.entries({
      ...staticSecurityHeaders,
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      connection: 'close',
    })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(`HTTP/1.1 ${status} ${text}\r\n${headers}\r\n${body}`);
  }
  socket.destroy(err);
}

/** Fastify's frameworkErrors: a URL it cannot decode (400) or a path parameter too long (414). */
export function frameworkErrors(err: Error & { code?: string }, _req: FastifyRequest, reply: FastifyReply): void {
  const long = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
  void reply
    .headers(staticSecurityHeaders)
    .code(long ? 414 : 400)
    .send(
      long
        ? edgeBody('uri_too_long', 'A part of the address is too long; check the link.')
        : edgeBody('bad_request', 'The address is not a valid URL (bad percent-encoding?); check the link.'),
    );
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: operators only (session cookie or Bearer token). */
    operatorOnly: onRequestHookHandler;
    /** Whether the request is an operator's (for answers that show operators more). */
    isOperator(req: FastifyRequest, reply: FastifyReply): boolean;
    /** preHandler hook: an operator's browser state change needs our Origin and a CSRF token. */
    operatorWrites: preHandlerHookHandler;
    /** preHandler hook for public forms (the order form): Origin and CSRF token for browser posts. */
    publicWrites: preHandlerHookHandler;
    /** Per-route rate limits (undefined: off). */
    limits: { orders: RateLimitOptions | undefined; operator: RateLimitOptions | undefined };
  }
}

export interface SecurityOptions {
  config: Pick<Config, 'HOST' | 'ALLOWED_HOSTS' | 'RATE_LIMIT_ORDERS_PER_MIN' | 'RATE_LIMIT_OPERATOR_PER_MIN'>;
  operatorToken: string;
}

/** Probes and scrapers call by IP address; these answer nothing a rebinding page could use. */
const ANY_HOST = new Set(['/health', '/ready', '/metrics']);

async function security(app: FastifyInstance, opts: SecurityOptions) {
  app.addHook('onRequest', (_req, reply, done) => {
    reply.headers(staticSecurityHeaders);
    done();
  });

  // DNS rebinding: answer only the names we are known by.
  const hosts = hostPolicy(opts.config);
  app.addHook('onRequest', async (req, reply) => {
    if (hosts.allows(req.headers.host) || ANY_HOST.has(req.url.split('?')[0]!)) return undefined;
    return reply
      .code(403)
      .send(
        edgeBody(
          'host_not_allowed',
          `This server does not answer for the host ${JSON.stringify(req.headers.host ?? '')}; add it to ALLOWED_HOSTS if it is really its name.`,
        ),
      );
  });

  await app.register(cookie, { secret: cookieSecret(opts.operatorToken) });
  // The CSRF secret lives in a signed cookie: a page on another port of the same host can set
  // cookies for this one, but cannot sign them.
  await app.register(csrf, { sessionPlugin: '@fastify/cookie', cookieOpts: { signed: true, httpOnly: true, sameSite: 'lax', path: '/', secure: 'auto' } });

  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_req, ctx) =>
      new EdgeError(429, 'rate_limited', `Too many requests from your address (at most ${ctx.max} per minute here); retry in ${ctx.after}.`),
  });
  const perMinute = (max: number): RateLimitOptions | undefined => (max > 0 ? { max, timeWindow: 60_000 } : undefined);
  app.decorate('limits', { orders: perMinute(opts.config.RATE_LIMIT_ORDERS_PER_MIN), operator: perMinute(opts.config.RATE_LIMIT_OPERATOR_PER_MIN) });

  app.decorateRequest('operatorVia', null);
  app.decorate('operatorOnly', operatorOnly(opts.operatorToken));
  app.decorate('isOperator', (req: FastifyRequest, reply: FastifyReply) => operatorOf(req, reply, opts.operatorToken) !== null);
  app.decorate('operatorWrites', operatorWrites(app));
  // The shop's form is public, but a cross-site page must not post it in a visitor's browser.
  // A JSON body without cookies is a script's (a browser sends JSON cross-site only after a CORS
  // preflight, which this app never grants), so it needs no CSRF token.
  app.decorate('publicWrites', async function publicWrites(req: FastifyRequest, reply: FastifyReply) {
    const json = (req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json');
    if (json && !req.headers.cookie) {
      if (originOf(req) !== 'cross') return undefined;
      return refuse(
        req,
        reply,
        403,
        'origin_not_allowed',
        `This request came from ${req.headers.origin ?? 'another site'}, not from a page of ${req.headers.host ?? 'this site'}; post from orderflow's own pages.`,
      );
    }
    return checkBrowserWrite(app, req, reply, false);
  });
}

// fastify-plugin: what it registers (headers, hooks, decorators) must reach the routes, not stay encapsulated.
export default fp(security);
