import type { FastifyRequest } from 'fastify';

/**
 * One set of routes serves browsers and API clients. JSON when the client asks for it (Accept
 * names application/json before, or instead of, text/html), or when it sent JSON and did not ask
 * for HTML; HTML otherwise.
 */
export function wantsJson(req: FastifyRequest): boolean {
  const accept = req.headers.accept ?? '';
  const json = accept.indexOf('application/json');
  const html = accept.indexOf('text/html');
  if (json !== -1 && (html === -1 || json < html)) return true;
  if (html !== -1) return false;
  return (req.headers['content-type'] ?? '').includes('application/json');
}
