import Database from 'better-sqlite3';
import { StorageUnavailableError } from '../../orders/errors.js';
import type { Storage } from '../../orders/ports.js';
import { Queries } from '../queries.js';
import { storageReads, transactionPorts } from '../store.js';
import { translate } from './errors.js';
import { sqliteFile, sqlitePath } from './path.js';
import { GroupCommitWriter, Statements } from './writer.js';

export interface SqliteOptions {
  /** Operators' commands that only look: never creates the file (or its folder), never writes. */
  readOnly?: boolean;
  /** Give up on a write lock another process holds this long. */
  lockTimeoutMs?: number;
}

/**
 * Storage on one SQLite file (better-sqlite3), shared by every process on the machine: WAL mode
 * (set once by the migrator, it persists in the file) lets readers and the one writer overlap.
 * Two connections: the group-commit writer, and one for reads, so a page never sees a unit's
 * writes before they are committed.
 */
export function openSqliteStorage(databaseUrl: string, opts: SqliteOptions = {}): Storage {
  const queries = new Queries('sqlite');
  let writerConn: Database.Database | undefined;
  let readerConn: Database.Database;
  try {
    if (opts.readOnly) {
      readerConn = new Database(sqlitePath(databaseUrl), { readonly: true, fileMustExist: true, timeout: 10_000 });
    } else {
      writerConn = new Database(sqliteFile(databaseUrl), { timeout: 0 });
      writerConn.pragma('journal_mode = WAL');
      writerConn.pragma('synchronous = FULL');
      readerConn = new Database(sqlitePath(databaseUrl), { timeout: 10_000 });
      readerConn.pragma('query_only = 1');
    }
  } catch (err) {
    writerConn?.close();
    throw translate(err);
  }
  const writer = writerConn ? new GroupCommitWriter(writerConn, (exec) => transactionPorts(exec, queries), opts.lockTimeoutMs) : undefined;
  const reads = storageReads(new Statements(readerConn), queries);
  return {
    kind: 'sqlite',
    ...reads,
    run(work, runOpts) {
      if (!writer) return Promise.reject(new StorageUnavailableError('this storage was opened read-only'));
      return writer.run(work, runOpts);
    },
    async close() {
      await writer?.close();
      writerConn?.close();
      readerConn.close();
    },
  };
}
