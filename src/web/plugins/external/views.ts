import { resolve } from 'node:path';
import formbody from '@fastify/formbody';
import fastifyStatic from '@fastify/static';
import view from '@fastify/view';
import { Eta } from 'eta';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { BODY_LIMIT_BYTES } from '../../errors.js';
import { PROJECT_ROOT } from '../../paths.js';

/** HTML forms, Eta views (autoEscape: every `<%= %>` is escaped) and the /public assets. */
async function views(app: FastifyInstance, opts: { production: boolean }) {
  await app.register(formbody, { bodyLimit: BODY_LIMIT_BYTES });
  await app.register(view, {
    engine: { eta: new Eta({ autoEscape: true, autoTrim: false }) },
    root: resolve(PROJECT_ROOT, 'views'),
    viewExt: 'eta',
    production: opts.production,
  });
  await app.register(fastifyStatic, { root: resolve(PROJECT_ROOT, 'public'), prefix: '/public/', maxAge: opts.production ? '1h' : 0 });
}

// fastify-plugin: what it registers (reply.view, headers) must reach the routes, not stay encapsulated.
export default fp(views);
