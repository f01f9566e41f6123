import { resolve } from 'node:path';
import { ErrorCode } from 'nats';
import { redactUrl } from '../nats/auth/options.js';
import { couldNotConnect, isJsError, JsErrCode } from '../nats/errors.js';
import { sqlitePath } from '../storage/sqlite/path.js';

/**
 * What a person sees when a command fails: one line naming the cause and the fix, never a stack.
 * Commands throw a CliError when they know both; anything else is translated by describeFailure.
 */
export class CliError extends Error {
  constructor(
    message: string,
    /** Exit code: 1 for a failure, 2 for a usage error, EXIT_CONFIG for a setting to change. */
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/**
 * A process that cannot start because of its configuration (a port in use, a bad setting) exits
 * with this code (EX_CONFIG from sysexits.h): `orderflow start` does not restart it, since the
 * next attempt would fail the same way.
 */
export const EXIT_CONFIG = 78;

/** Where a command looked, named in its error so the reader can tell a wrong setting from a broken server. */
export interface Where {
  natsUrl?: string;
  databaseUrl?: string;
}

/** The database file (SQLite), or the server and database without credentials (PostgreSQL). */
export const databaseLabel = (databaseUrl: string) => (databaseUrl.startsWith('file:') ? resolve(sqlitePath(databaseUrl)) : redactUrl(databaseUrl));

function whereText(where: Where): string {
  const parts = [];
  if (where.databaseUrl) parts.push(`database ${databaseLabel(where.databaseUrl)}`);
  if (where.natsUrl) parts.push(`NATS ${where.natsUrl}`);
  return parts.length ? ` [${parts.join(', ')}]` : '';
}

interface ErrorLike {
  message?: string;
  port?: number;
  address?: string;
  code?: string | number;
  api_error?: { code?: number; err_code?: number; description?: string };
}

/** The cause and the fix for errors we know, else the error's first line. */
export function describeFailure(err: unknown, where: Where = {}): { message: string; exitCode: number } {
  if (err instanceof CliError) return { message: err.message + whereText(where), exitCode: err.exitCode };
  const e = (err ?? {}) as ErrorLike;
  const msg =
    String(e.message ?? err)
      .split('\n')
      .find((l) => l.trim()) ?? 'unknown error';
  const code = String(e.code ?? '');
  let line: string;
  let exitCode = 1;
  if (code === 'EADDRINUSE') {
    const at = e.port !== undefined ? `port ${e.port}${e.address ? ` on ${e.address}` : ''}` : 'the port';
    line = `${at} is in use; set PORT (the web app) or --metrics-port (a worker) to a free one, or stop what listens there`;
    exitCode = EXIT_CONFIG;
  } else if (code === 'EACCES' && /listen/.test(msg)) {
    line = `${msg}: not allowed to listen there; use a port above 1023`;
    exitCode = EXIT_CONFIG;
  } else if (isJsError(err, JsErrCode.StreamNotFound)) {
    line = 'the JetStream stream does not exist; `orderflow nats streams` lists them, `orderflow setup` creates orderflow’s';
  } else if (isJsError(err, JsErrCode.ConsumerNotFound)) {
    line = 'the JetStream consumer does not exist; `orderflow setup` creates orderflow’s consumers';
  } else if (isJsError(err, JsErrCode.NotEnabled) || isJsError(err, JsErrCode.NotEnabledForAccount) || code === ErrorCode.JetStreamNotEnabled) {
    line = 'JetStream is not enabled on the NATS server; start it with `nats-server -js`';
  } else if (code === ErrorCode.ConnectionRefused || code === 'ECONNREFUSED' || (code === ErrorCode.Timeout && couldNotConnect(err))) {
    line = 'cannot reach the NATS server; start one (README, "Run the pieces in separate terminals") or set NATS_URL';
  } else if (code === ErrorCode.Timeout) {
    // Connected, then a request went unanswered: on a cluster, most often a stream or consumer
    // whose leader is being elected after a node left.
    line =
      'the NATS server did not answer in time (connected, but a request timed out; on a cluster a stream may be electing its leader); try again, and `orderflow nats streams` shows each stream’s leader';
  } else if (code === 'P2021' || /no such table/i.test(msg)) {
    line = 'the database has no orderflow tables; run `orderflow setup` (or set DATABASE_URL to the right file)';
  } else if (/SQLITE_CANTOPEN|unable to open database/i.test(code + msg)) {
    line = 'cannot open the database file; check DATABASE_URL and that its folder exists and is writable';
  } else if (/SQLITE_BUSY|database is locked/i.test(code + msg)) {
    line = 'the database is locked by another process; try again';
  } else {
    line = msg;
  }
  return { message: line + whereText(where), exitCode };
}

/** Prints `orderflow <command>: <cause and fix>` and exits non-zero. */
export function fail(command: string, err: unknown, where: Where = {}): never {
  const { message, exitCode } = describeFailure(err, where);
  process.stderr.write(`orderflow ${command}: ${message}\n`);
  process.exit(exitCode);
}
