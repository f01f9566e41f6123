import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { endSession, safeNext, sameSecret, startSession } from '../edge/operator.js';
import { refuse } from '../edge/refuse.js';
import { wantsJson } from '../negotiate.js';

const signinQuery = z.object({ token: z.string().max(512).optional(), next: z.string().max(2000).optional() });
const signinBody = z.object({ token: z.string().max(512).default(''), next: z.string().max(2000).optional() });

/**
 * Operators sign in with the operator token: the link `orderflow start` prints
 * (/signin?token=…, which sets the session cookie and redirects, so the token leaves the address
 * bar and the history at once), or the form on /signin.
 */
export default async function signin(app: FastifyInstance, opts: { operatorToken: string }) {
  const limit = app.limits.operator ? { config: { rateLimit: app.limits.operator } } : {};

  const form = (reply: FastifyReply, next: string, error?: string) => reply.view('signin', { next, error, csrf: reply.generateCsrf() });

  const accept = async (req: FastifyRequest, reply: FastifyReply, token: string, next: string) => {
    if (!sameSecret(token, opts.operatorToken)) {
      reply.code(401);
      if (wantsJson(req))
        return refuse(
          req,
          reply,
          401,
          'unauthorized',
          'That operator token is wrong; use ORDERFLOW_OPERATOR_TOKEN or the one in DATA_DIR/operator-token (or the link `orderflow start` prints).',
        );
      return form(reply, next, 'That token is not the operator token. Use the link `orderflow start` printed, or the value of ORDERFLOW_OPERATOR_TOKEN.');
    }
    startSession(reply);
    if (wantsJson(req)) return { signed_in: true };
    return reply.redirect(next, 303);
  };

  app.get('/signin', limit, async (req, reply) => {
    const q = signinQuery.safeParse(req.query);
    const next = safeNext(q.success ? q.data.next : undefined);
    if (q.success && q.data.token !== undefined) return accept(req, reply, q.data.token, next);
    return form(reply, next);
  });

  app.post('/signin', { ...limit, preHandler: app.publicWrites }, async (req, reply) => {
    const b = signinBody.safeParse(req.body ?? {});
    const next = safeNext(b.success ? b.data.next : undefined);
    return accept(req, reply, b.success ? b.data.token : '', next);
  });

  app.post('/signout', { onRequest: app.operatorOnly, preHandler: app.operatorWrites }, async (req, reply) => {
    endSession(reply);
    return wantsJson(req) ? { signed_out: true } : reply.redirect('/signin', 303);
  });
}
