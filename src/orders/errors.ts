/**
 * What can go wrong in storage, in the domain's words. Adapters translate their driver's errors
 * into these (SQLITE_CONSTRAINT_UNIQUE, PostgreSQL's 23505, ECONNREFUSED …); the flows and the
 * edges (HTTP, workers) only ever see these.
 */
export { IllegalTransitionError } from './state.js';

export class OrderNotFoundError extends Error {
  constructor(readonly orderId: string) {
    super(`order ${orderId} not found`);
  }
}

/** A unique key taken already (an order reference: 1 in ~10^12, retried with a new one). */
export class DuplicateKeyError extends Error {
  constructor(readonly key: string) {
    super(`duplicate key: ${key}`);
  }
}

/**
 * The database cannot be reached or cannot take writes right now (server down, connections
 * refused, locked past the timeout). Nothing was stored; the caller may try again later.
 */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
