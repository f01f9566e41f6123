import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Security headers. The CSP allows only our own scripts and styles (no inline ones).
 * upgrade-insecure-requests is off: orderflow is served over plain HTTP on loopback by default,
 * and a TLS-terminating proxy in front of it sets its own policy.
 */
async function security(app: FastifyInstance) {
  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: { defaultSrc: ["'self'"], scriptSrc: ["'self'"], styleSrc: ["'self'"], imgSrc: ["'self'", 'data:'], upgradeInsecureRequests: null },
    },
    strictTransportSecurity: false,
  });
}

// fastify-plugin: what it registers (reply.view, headers) must reach the routes, not stay encapsulated.
export default fp(security);
