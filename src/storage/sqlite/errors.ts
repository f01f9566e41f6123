import { DuplicateKeyError, StorageUnavailableError } from '../../orders/errors.js';

// SQLite's error codes are known here and nowhere else: the rest of orderflow sees src/orders/errors.ts.

const code = (err: unknown) => String((err as { code?: unknown }).code ?? '');

export const isBusy = (err: unknown) => code(err).startsWith('SQLITE_BUSY');

/** A driver error in the domain's words, or the error itself when it has none. */
export function translate(err: unknown): unknown {
  const c = code(err);
  if (c === 'SQLITE_CONSTRAINT_UNIQUE' || c === 'SQLITE_CONSTRAINT_PRIMARYKEY') return new DuplicateKeyError((err as Error).message.replace(/^UNIQUE constraint failed: /, ''));
  if (c === 'SQLITE_CANTOPEN' || c === 'SQLITE_FULL' || c.startsWith('SQLITE_IOERR') || isBusy(err))
    return new StorageUnavailableError(`${(err as Error).message} (${c})`, { cause: err });
  return err;
}
