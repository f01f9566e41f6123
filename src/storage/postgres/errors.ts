import { DuplicateKeyError, StorageUnavailableError } from '../../orders/errors.js';

// PostgreSQL's SQLSTATEs and pg's connection errors are known here and nowhere else: the rest of
// orderflow sees src/orders/errors.ts.

interface PgError {
  code?: string;
  message?: string;
  constraint?: string;
  detail?: string;
}

/** Network errors of the socket to the server (Node's codes). */
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);

/**
 * SQLSTATEs that mean "the database is away or cannot take this now", not "this request is
 * wrong": connection exceptions (class 08), the server shutting down or starting (57P01–57P03),
 * out of connections, disk, memory (class 53), a read-only standby after a failover (25006).
 */
function unavailableState(code: string): boolean {
  return code.startsWith('08') || code.startsWith('53') || code === '57P01' || code === '57P02' || code === '57P03' || code === '25006';
}

/** pg's own errors for a connection that died or never came, which carry no code. */
const PG_CONNECTION_MESSAGE =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed|Cannot use a pool after calling end)/;

/** Deadlock and serialization failures: nothing was committed; the whole unit may run again. */
export function isRetryable(err: unknown): boolean {
  const code = (err as PgError).code;
  return code === '40P01' || code === '40001';
}

/** 25P02: a statement refused because an earlier one had aborted the transaction (someone else's error, in a shared one). */
export function isKnockOn(err: unknown): boolean {
  const e = err as PgError & { cause?: PgError };
  return e?.code === '25P02' || e?.cause?.code === '25P02';
}

/**
 * A prepared statement that a schema change (a migration applied while we run) has left with
 * other result columns: PostgreSQL refuses it on that connection for good, so the connection is
 * replaced and the statement prepared again.
 */
export function isStalePlan(err: unknown): boolean {
  const e = err as PgError;
  return e?.code === '0A000' && /cached plan must not change result type/.test(e.message ?? '');
}

export function isUnavailable(err: unknown): boolean {
  const e = err as PgError;
  const code = typeof e?.code === 'string' ? e.code : '';
  return (
    NETWORK.has(code) ||
    unavailableState(code) ||
    PG_CONNECTION_MESSAGE.test(e?.message ?? '') ||
    (err instanceof AggregateError && err.errors.some(isUnavailable))
  );
}

/** A driver error in the domain's words, or the error itself when it has none. */
export function translate(err: unknown, where: string): unknown {
  if (err instanceof DuplicateKeyError || err instanceof StorageUnavailableError) return err;
  const e = err as PgError;
  if (e?.code === '23505') return new DuplicateKeyError(e.constraint ?? e.detail ?? e.message ?? 'unique key');
  if (isUnavailable(err)) {
    const reason = e.code && !/^[0-9A-Z]{5}$/.test(e.code) ? `${e.code}` : (e.message ?? String(err));
    return new StorageUnavailableError(`PostgreSQL at ${where} is unavailable: ${reason}${e.code && reason !== e.code ? ` (${e.code})` : ''}`, { cause: err });
  }
  return err;
}
