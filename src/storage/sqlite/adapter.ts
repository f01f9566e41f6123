import Database from 'better-sqlite3';
import { StorageUnavailableError } from '../../orders/errors.js';
import type { Storage } from '../../orders/ports.js';
import { Queries } from '../queries.js';
import { storageReads, transactionPorts } from '../store.js';
import { Checkpointer, type CheckpointerOptions, type CheckpointStats } from './checkpointer.js';
import { translate } from './errors.js';
import { LockHandoff } from './handoff.js';
import { sqliteFile, sqlitePath } from './path.js';
import { GroupCommitWriter, Statements, type WriterStats } from './writer.js';

export interface SqliteOptions {
  /** Operators' commands that only look: never creates the file (or its folder), never writes. */
  readOnly?: boolean;
  /** Give up on a write lock another process holds this long. */
  lockTimeoutMs?: number;
  /** The checkpointer thread's thresholds (tests). */
  checkpoints?: CheckpointerOptions;
}

/**
 * Storage on one SQLite file (better-sqlite3), shared by every process on the machine: WAL mode
 * (set once by the migrator, it persists in the file) lets readers and the one writer overlap.
 * Two connections: the group-commit writer, and one for reads, so a page never sees a unit's
 * writes before they are committed.
 */
/** The lock handoff, or none where its file cannot be made (then waiting writers retry on timers alone). */
function openHandoff(file: string): LockHandoff | undefined {
  try {
    return new LockHandoff(file);
  } catch {
    return undefined;
  }
}

export interface SqliteStorage extends Storage {
  /** The write path's counters since open (none when read-only). */
  stats(): Partial<WriterStats & CheckpointStats>;
}

export function openSqliteStorage(databaseUrl: string, opts: SqliteOptions = {}): SqliteStorage {
  const queries = new Queries('sqlite');
  let writerConn: Database.Database | undefined;
  let readerConn: Database.Database;
  let checkpointer: Checkpointer | undefined;
  let handoff: LockHandoff | undefined;
  try {
    if (opts.readOnly) {
      readerConn = new Database(sqlitePath(databaseUrl), { readonly: true, fileMustExist: true, timeout: 10_000 });
    } else {
      const file = sqliteFile(databaseUrl);
      writerConn = new Database(file, { timeout: 0 });
      writerConn.pragma('journal_mode = WAL');
      writerConn.pragma('synchronous = FULL');
      readerConn = new Database(sqlitePath(databaseUrl), { timeout: 10_000 });
      readerConn.pragma('query_only = 1');
      if (file !== ':memory:') {
        checkpointer = new Checkpointer(file, writerConn, opts.checkpoints);
        handoff = openHandoff(file);
      }
    }
  } catch (err) {
    writerConn?.close();
    handoff?.close();
    void checkpointer?.stop();
    throw translate(err);
  }
  const writer = writerConn
    ? new GroupCommitWriter(writerConn, (exec) => transactionPorts(exec, queries), {
        lockTimeoutMs: opts.lockTimeoutMs,
        handoff,
        afterCommit: checkpointer && (() => checkpointer.committed()),
      })
    : undefined;
  const reads = storageReads(new Statements(readerConn), queries);
  return {
    kind: 'sqlite',
    ...reads,
    stats: () => ({ ...writer?.stats, ...checkpointer?.stats }),
    run(work, runOpts) {
      if (!writer) return Promise.reject(new StorageUnavailableError('this storage was opened read-only'));
      return writer.run(work, runOpts);
    },
    async close() {
      await writer?.close();
      await checkpointer?.stop();
      handoff?.close();
      writerConn?.close();
      readerConn.close();
    },
  };
}
