import type { FastifyInstance } from 'fastify';

/**
 * What a browser holds after loading one of our forms: the CSRF cookie and the token in the page.
 * Tests that post forms as a browser does send both back.
 */
export async function formTokens(
  app: FastifyInstance,
  url = '/orders/create',
  headers: Record<string, string> = {},
): Promise<{ cookie: string; token: string }> {
  const page = await app.inject({ url, headers: { accept: 'text/html', ...headers } });
  const token = /name="_csrf" value="([^"]+)"|id="csrf-token" value="([^"]+)"/.exec(page.body);
  if (!token) throw new Error(`${url} has no CSRF token (status ${page.statusCode})`);
  const cookie = page.cookies.map((c) => `${c.name}=${c.value}`).join('; ');
  const given = headers.cookie ? `${headers.cookie}; ` : '';
  return { cookie: `${given}${cookie}`, token: (token[1] ?? token[2])! };
}
