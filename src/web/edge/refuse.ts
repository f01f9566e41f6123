import type { FastifyReply, FastifyRequest } from 'fastify';
import { wantsJson } from '../negotiate.js';

/** The codes the web app's edge answers with (the shared shape: {"error": code, "message": one line}). */
export type EdgeErrorCode =
  | 'unauthorized'
  | 'forbidden'
  | 'csrf_invalid'
  | 'origin_not_allowed'
  | 'host_not_allowed'
  | 'rate_limited'
  | 'too_many_streams'
  | 'protected_subject'
  | 'request_timeout'
  | 'headers_too_large'
  | 'uri_too_long'
  | 'bad_request'
  | 'publish_failed';

/** An error a hook or a plugin throws (e.g. the rate limit's 429) that keeps its own code. */
export class EdgeError extends Error {
  constructor(
    readonly statusCode: number,
    readonly error: EdgeErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export const edgeBody = (error: EdgeErrorCode, message: string) => ({ error, message });

/** Answers a refused request: JSON for API clients, the error page for browsers. */
export function refuse(req: FastifyRequest, reply: FastifyReply, status: number, error: EdgeErrorCode, message: string): FastifyReply | Promise<FastifyReply> {
  reply.code(status);
  if (wantsJson(req) || !reply.view) return reply.send(edgeBody(error, message));
  return reply.view('error', { title: status === 401 ? 'Sign in first' : status === 429 ? 'Slow down' : 'Refused', message });
}
