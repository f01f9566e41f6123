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
  private watcher: FSWatcher | undefined;

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
   * Calls `wake` whenever another writer releases the lock, until `unwatch()`: one watch for a
   * whole wait, however many tries it takes. False where the file system has no change events.
   */
  watch(wake: () => void): boolean {
    if (this.watcher) return true;
    try {
      this.watcher = watch(this.path, { persistent: false }, wake);
      this.watcher.on('error', () => this.unwatch());
      return true;
    } catch {
      return false;
    }
  }

  unwatch(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  close(): void {
    this.unwatch();
    closeSync(this.fd);
  }
}
