import { closeSync, constants, type FSWatcher, openSync, statSync, watch, writeSync } from 'node:fs';

const BYTE = new Uint8Array(1);

/**
 * Hands SQLite's write lock from one process to the next. SQLite tells a waiter nothing when the
 * lock is released, so a writer refused by BEGIN IMMEDIATE could only try again later, and a
 * timer's "later" (1-2 ms) is longer than most transactions hold the lock: it sat idle while
 * writers in other processes slept. So every writer touches `<database>-handoff` (one byte
 * rewritten in place: no fsync, the file never grows) as it releases the lock, and a waiting
 * writer watches that file (inotify through fs.watch, only while it waits) and tries again when
 * it changes. The fallback timer covers what does not touch it (a migration, an operator's
 * sqlite3 shell, a file system without change events): never later than before.
 */
export class LockHandoff {
  private readonly fd: number;

  constructor(
    readonly databaseFile: string,
    readonly path = `${databaseFile}-handoff`,
  ) {
    // Readable and writable by whoever may write the database, like its -wal and -shm files.
    this.fd = openSync(path, constants.O_RDWR | constants.O_CREAT, statSync(databaseFile).mode & 0o666);
  }

  /** The write lock was just released. */
  released(): void {
    writeSync(this.fd, BYTE, 0, 1, 0);
  }

  /**
   * Calls `retry` once, when another writer releases the lock or after `fallbackMs`. Returns a
   * cancel. The lock may have been released just before the watch began: the caller tries once
   * more right after this returns.
   */
  wait(retry: () => void, fallbackMs: number): () => void {
    let watcher: FSWatcher | undefined;
    const done = () => {
      clearTimeout(timer);
      watcher?.close();
      watcher = undefined;
    };
    const fire = () => {
      if (!watcher) return;
      done();
      retry();
    };
    const timer = setTimeout(fire, fallbackMs);
    try {
      watcher = watch(this.path, { persistent: false }, fire);
      watcher.on('error', fire);
    } catch {
      // No change events here: the timer alone, as before.
      watcher = undefined;
      clearTimeout(timer);
      const plain = setTimeout(retry, fallbackMs);
      return () => clearTimeout(plain);
    }
    return done;
  }

  close(): void {
    closeSync(this.fd);
  }
}
