import type { FastifyError, FastifyReply } from 'fastify';

/**
 * Every JSON error the HTTP API answers has one shape:
 *   {"error":"<code>","message":"<one line: the cause and the fix>"}   (+ "fields" for validation_failed)
 * The code is stable (clients branch on it); the message is for people and may be reworded.
 * This table is the list of codes: the README's table is generated from it (`npm run docs`),
 * so a code added here is documented by rerunning that one command.
 */
export const API_ERRORS = {
  validation_failed: { status: 400, meaning: 'a field is missing or invalid; `fields` maps each field to its messages' },
  invalid_json: { status: 400, meaning: 'the body is not valid JSON' },
  empty_body: { status: 400, meaning: 'the content type says JSON but the body is empty' },
  bad_request: { status: 400, meaning: 'any other malformed request (the message says what)' },
  not_found: { status: 404, meaning: 'no such page, route or order' },
  method_not_allowed: { status: 405, meaning: "a worker's ops server (`--metrics-port`) answers GET only" },
  not_retryable: { status: 409, meaning: 'that dead letter cannot be retried (its original subject is not one orderflow consumes)' },
  payload_too_large: { status: 413, meaning: 'the body is larger than 16 KiB' },
  unsupported_media_type: { status: 415, meaning: 'the body is not `application/json` or `application/x-www-form-urlencoded`' },
  internal_error: { status: 500, meaning: 'a fault on our side; it was logged with the correlation id' },
  // The edge (src/web/edge): who may do what, and how much.
  unauthorized: {
    status: 401,
    meaning: 'an operator route without a session or `Authorization: Bearer <token>` (a browser asking for a page is sent to `/signin` instead)',
  },
  forbidden: { status: 403, meaning: 'signed in, but not allowed to do that' },
  csrf_invalid: { status: 403, meaning: "a browser's state-changing request without a valid CSRF token (reload the page)" },
  origin_not_allowed: { status: 403, meaning: "a browser's state-changing request from another origin" },
  host_not_allowed: { status: 403, meaning: 'a `Host` that is not loopback, `HOST` or in `ALLOWED_HOSTS` (DNS rebinding)' },
  protected_subject: { status: 400, meaning: "a dashboard tool aimed at one of orderflow's own subjects without `inject: true`" },
  request_timeout: { status: 408, meaning: "the request's headers or body did not arrive within `HTTP_REQUEST_TIMEOUT_MS`" },
  uri_too_long: { status: 414, meaning: 'the URL is too long' },
  rate_limited: { status: 429, meaning: 'too many requests from this address; `Retry-After` says when to try again' },
  headers_too_large: { status: 431, meaning: 'the request headers are too large' },
  retry_failed: { status: 409, meaning: 'NATS did not take a dead letter back (its subject is in no stream, or a permission)' },
  publish_failed: { status: 502, meaning: "NATS did not take a dashboard tool's message (a permission, no stream)" },
  too_many_streams: { status: 503, meaning: 'too many live streams open in total (429 when too many from this address); `Retry-After` says when' },
  database_unavailable: {
    status: 503,
    meaning:
      'the database is not answering (PostgreSQL stopped or unreachable, SQLite locked or its disk full): nothing was stored, no order taken; `Retry-After` says when to try again (`/ready` with the operator token says why)',
  },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type ApiErrorCode = keyof typeof API_ERRORS;

/** The request body limit, in bytes (enforced by Fastify's bodyLimit; named in payload_too_large). */
export const BODY_LIMIT_BYTES = 16 * 1024;

export interface ApiErrorBody {
  error: ApiErrorCode;
  message: string;
  fields?: Record<string, string[]>;
}

export function apiError(code: ApiErrorCode, message: string, fields?: Record<string, string[]>): ApiErrorBody {
  return fields ? { error: code, message, fields } : { error: code, message };
}

/** Sets the status that belongs to `code` and sends the error body. */
export function sendApiError(reply: FastifyReply, code: ApiErrorCode, message: string, fields?: Record<string, string[]>): FastifyReply {
  return reply.code(API_ERRORS[code].status).send(apiError(code, message, fields));
}

/** A Fastify error (thrown by a parser, a limit or a route) as one of our codes, with a message a person can act on. */
export function fromFastifyError(err: FastifyError): ApiErrorBody {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return apiError('payload_too_large', `The request body is larger than ${BODY_LIMIT_BYTES / 1024} KiB; send a smaller one.`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return apiError('unsupported_media_type', 'Send the body as application/json or application/x-www-form-urlencoded.');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return apiError('invalid_json', 'The body is not valid JSON; check its quotes, commas and brackets.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return apiError('empty_body', 'The content type is application/json but the body is empty; send a JSON object.');
  }
  if (err.statusCode === 413) return apiError('payload_too_large', `The request body is larger than ${BODY_LIMIT_BYTES / 1024} KiB; send a smaller one.`);
  if (err.statusCode === 415) return apiError('unsupported_media_type', 'Send the body as application/json or application/x-www-form-urlencoded.');
  if (err.statusCode === 404) return apiError('not_found', err.message);
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return apiError('bad_request', oneLine(err.message));
  return apiError(
    'internal_error',
    'Something went wrong on our side; it was logged with this request’s correlation id. Try again, and report it if it persists.',
  );
}

const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();
