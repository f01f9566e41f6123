import { StorageUnavailableError } from '../../orders/errors.js';
import type { Storage } from '../../orders/ports.js';
import { Queries } from '../queries.js';
import { storageReads, transactionPorts } from '../store.js';
import { openPostgresPool, type PostgresOptions } from './pool.js';

export type { PostgresOptions };

const PING_TIMEOUT_MS = 2000;

/**
 * Storage on PostgreSQL (pool.ts: a `pg` pool in pipeline mode, group commit, prepared
 * statements), running the same Kysely-built statements as SQLite compiled for PostgreSQL.
 * Claims are conditional updates, the outbox lease `FOR UPDATE SKIP LOCKED` (see queries.ts), so
 * any number of processes on any number of machines can share the database. Reads run on the
 * pool outside any transaction. Driver errors become the domain's (errors.ts): a unique violation
 * DuplicateKeyError, a server that is away StorageUnavailableError.
 */
export function openPostgresStorage(databaseUrl: string, opts: PostgresOptions = {}): Storage {
  const queries = new Queries('postgresql');
  const db = openPostgresPool(databaseUrl, opts);
  const { where } = db;
  const reads = storageReads(db.reads, queries);
  const writer = db.groupCommit((exec) => transactionPorts(exec, queries));
  let closed: Promise<void> | undefined;

  return {
    kind: 'postgresql',
    ...reads,
    // For /ready, which a probe asks with a short timeout of its own: a server that does not
    // answer (a dropped route, a full pool) is reported as such within PING_TIMEOUT_MS.
    async ping() {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new StorageUnavailableError(`PostgreSQL at ${where} did not answer within ${PING_TIMEOUT_MS / 1000} s`)),
          PING_TIMEOUT_MS,
        );
      });
      try {
        await Promise.race([reads.ping(), late]);
      } finally {
        clearTimeout(timer);
      }
    },
    run: (work, runOpts) => writer.run(work, runOpts),
    close() {
      // Waits for queued units to commit and for checked-out connections to be released, then ends them all.
      if (!closed) closed = writer.close().then(() => db.end());
      return closed;
    },
  };
}
