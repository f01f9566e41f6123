import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { childTraceparent, newTraceId, TRACEPARENT, traceIdFrom } from '../events/trace.js';
import type { Runtime } from '../runtime/context.js';
import { wantsJson } from './negotiate.js';
import ordersPlugin from './plugins/app/orders.js';
import security, { clientErrorHandler, frameworkErrors } from './plugins/external/security.js';
import { resolveOperatorToken, type OperatorToken } from '../config/operator-token.js';
import { EdgeError } from './edge/refuse.js';
import signinRoutes from './routes/signin.js';
import views from './plugins/external/views.js';
import ordersRoutes from './routes/orders/index.js';
import dashboardRoutes from './routes/dashboard/index.js';
import livePlugin from './plugins/app/live.js';
import rootRoutes from './routes/root.js';
import opsRoutes from './routes/ops.js';
import { httpDuration } from '../observability/metrics.js';
import { correlationIdHeader } from './schemas.js';
import { API_ERRORS, apiError, BODY_LIMIT_BYTES, fromFastifyError } from './errors.js';
import { StorageUnavailableError } from '../orders/errors.js';

export const CORRELATION_HEADER = 'x-correlation-id';
/** A request slower than this is logged at warn (the others at debug). */
const SLOW_REQUEST_MS = 1000;

/** The web app: plugins/external (security, forms, views), plugins/app (the order domain), routes by folder. */
export async function buildApp(rt: Runtime, operator: OperatorToken = resolveOperatorToken(rt.config)): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: rt.log as FastifyBaseLogger,
    // The request id is the correlation id, which follows the order through every event, job
    // and reply: the trace id of a W3C traceparent, else a caller's x-correlation-id (when it is a
    // plain token), else a new trace id.
    genReqId: (req) => {
      const trace = traceIdFrom(req.headers[TRACEPARENT]);
      if (trace) return trace;
      const given = correlationIdHeader.safeParse(req.headers[CORRELATION_HEADER]);
      return given.success ? given.data : newTraceId();
    },
    // Fastify logs two info lines per request, static assets and the dashboard's poll included:
    // the onResponse hook below logs one, at debug, and at warn when it failed or was slow.
    logController: new LogController({ requestIdLogLabel: 'correlation_id', disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT_BYTES,
    // Slow clients hold a socket, not the server: the whole request (headers within 10 s) must
    // arrive within HTTP_REQUEST_TIMEOUT_MS; a silent connection is closed after 2 minutes
    // (SSE streams write a heartbeat every 15 s); idle keep-alive sockets after 5 s.
    requestTimeout: rt.config.HTTP_REQUEST_TIMEOUT_MS,
    connectionTimeout: 120_000,
    keepAliveTimeout: 5_000,
    // Node checks those two every connectionsCheckingInterval (30 s by default: a slow body
    // would get 30 s more than its due).
    http: { headersTimeout: Math.min(10_000, rt.config.HTTP_REQUEST_TIMEOUT_MS), connectionsCheckingInterval: 1000 },
    // Fastify's own early answers (unparsable request, bad URL, URL too long) run no hooks:
    // these two give them the security headers and our error shape.
    clientErrorHandler,
    frameworkErrors,
  });
  // Bodies are JSON or a form (views.ts registers the form parser). Fastify's built-in text/plain
  // parser would hand a route a string it cannot use; without it, text/plain gets the same 415 as
  // any other type.
  app.removeContentTypeParser('text/plain');

  app.addHook('onRequest', async (req, reply) => {
    reply.header(CORRELATION_HEADER, req.id);
    const tp = childTraceparent(req.id);
    if (tp) reply.header(TRACEPARENT, tp);
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    httpDuration.observe({ method: req.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    const ms = Math.round(reply.elapsedTime * 10) / 10;
    const slow = ms >= SLOW_REQUEST_MS && !req.url.endsWith('/stream'); // SSE streams are long by design
    const level = reply.statusCode >= 500 || slow ? 'warn' : 'debug';
    req.log[level]({ method: req.method, url: req.url, status: reply.statusCode, ms }, slow ? 'slow request' : 'request');
  });

  await app.register(security, { config: rt.config, operatorToken: operator.token });
  await app.register(views, { production: rt.config.NODE_ENV === 'production' });
  await app.register(ordersPlugin, { rt });
  await app.register(livePlugin, { rt });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404);
    return wantsJson(req)
      ? apiError('not_found', `Nothing answers ${req.method} ${req.url.split('?')[0]}; see the README for the routes.`)
      : reply.view('error', { title: 'Not found', message: 'There is nothing at this address.' });
  });

  // Client mistakes (bad JSON, wrong content type, too large) keep their 4xx and say what was
  // wrong, with one code per cause (errors.ts); anything else is a 500 that leaks no internals.
  app.setErrorHandler((err: FastifyError, req, reply) => {
    // The edge's refusals thrown from plugins (the rate limit's 429) keep their code.
    if (err instanceof EdgeError) {
      reply.code(err.statusCode);
      return wantsJson(req) ? { error: err.error, message: err.message } : reply.view('error', { title: 'Slow down', message: err.message });
    }
    // Fail closed: an order that cannot be stored is not accepted, and the client is told to retry.
    if (err instanceof StorageUnavailableError) {
      req.log.warn({ err: err.message }, 'database unavailable');
      reply.code(API_ERRORS.database_unavailable.status).header('retry-after', '5');
      const message = 'The database is not answering, so nothing was stored and no order was taken; try again in a few seconds.';
      return wantsJson(req) ? apiError('database_unavailable', message) : reply.view('error', { title: 'Try again shortly', message });
    }
    const body = fromFastifyError(err);
    const status = body.error === 'bad_request' ? err.statusCode! : API_ERRORS[body.error].status;
    if (status === 500) req.log.error({ err }, 'request failed');
    reply.code(status);
    return wantsJson(req) ? body : reply.view('error', { title: status === 500 ? 'Error' : 'Bad request', message: body.message });
  });

  // Routes last: they inherit the handlers set above.
  await app.register(rootRoutes);
  await app.register(signinRoutes, { operatorToken: operator.token });
  await app.register(opsRoutes, { rt });
  await app.register(ordersRoutes, { prefix: '/orders' });
  await app.register(dashboardRoutes, { prefix: '/dashboard' });

  return app;
}
