import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

export interface CheckpointerOptions {
  /** How often the thread looks at the WAL. */
  everyMs?: number;
  /** Checkpoint once this many WAL frames (pages) wait to be copied: SQLite's own autocheckpoint threshold. */
  frames?: number;
  /** A WAL this long (frames) that has not started over by itself is restarted. */
  restartFrames?: number;
  /** How long a RESTART may wait for the write lock and for readers still on the WAL. */
  restartWaitMs?: number;
}

export interface CheckpointStats {
  checkpoints: number;
  restarts: number;
  framesCopied: number;
  /** WAL length (frames) after the last checkpoint. */
  walFrames: number;
}

/**
 * WAL checkpoints on a worker thread, never on an event loop. SQLite's autocheckpoint runs one
 * inside whichever COMMIT takes the WAL past 1000 pages, on that process's event loop (reading
 * the WAL, writing pages, an fsync of the database file: the COMMIT's p99). So the writer turns
 * it off (`wal_autocheckpoint = 0`) and this thread, on its own connection, does what it did: a
 * checkpoint when 1000 frames wait, plus a RESTART when commits during every checkpoint kept the
 * WAL from starting over. Each writing process has one; a second checkpointer finding the
 * checkpoint lock taken leaves it to the first. The thread starts when the WAL first reaches half
 * the threshold (the writer looks after a commit, at most every 100 ms: a NOOP checkpoint only
 * reads the WAL index), so a process that writes little never starts one. If the thread dies,
 * the writer's autocheckpoint comes back: the WAL stays bounded either way.
 */
export class Checkpointer {
  readonly stats: CheckpointStats = { checkpoints: 0, restarts: 0, framesCopied: 0, walFrames: 0 };
  private worker: Worker | undefined;
  private stopping = false;
  private exited: Promise<void> = Promise.resolve();
  private lookedAt = 0;
  private readonly data: Required<CheckpointerOptions> & { file: string };

  constructor(
    file: string,
    private readonly writer: Database.Database,
    opts: CheckpointerOptions = {},
  ) {
    this.data = { file, everyMs: 50, frames: 1000, restartFrames: 4000, restartWaitMs: 100, ...opts };
    writer.pragma('wal_autocheckpoint = 0');
  }

  /** The writer committed: starts the thread once the WAL has grown to half the threshold. */
  committed(): void {
    if (this.worker || this.stopping) return;
    const now = performance.now();
    if (now - this.lookedAt < 100) return;
    this.lookedAt = now;
    const [wal] = this.writer.pragma('wal_checkpoint(NOOP)') as { log: number; checkpointed: number }[];
    if (wal && wal.log - wal.checkpointed >= this.data.frames / 2) this.start();
  }

  start(): void {
    if (this.worker || this.stopping) return;
    const { data, writer } = this;
    this.worker = new Worker(new URL('./checkpoint-worker.mjs', import.meta.url), { workerData: data, resourceLimits: { maxOldGenerationSizeMb: 16 } });
    // A process whose only work left is this thread may exit: close() stops it first when it can.
    this.worker.unref();
    this.worker.on('message', (m: { frames: number; log: number; restarted: boolean }) => {
      this.stats.checkpoints++;
      this.stats.framesCopied += m.frames;
      this.stats.walFrames = m.restarted ? 0 : m.log;
      if (m.restarted) this.stats.restarts++;
    });
    const fallBack = () => {
      if (!this.stopping && writer.open) writer.pragma(`wal_autocheckpoint = ${data.frames}`);
    };
    this.worker.on('error', fallBack);
    const worker = this.worker;
    this.exited = new Promise((done) => worker.once('exit', () => done(fallBack())));
  }

  /** Stops the thread (after the checkpoint it may be running). */
  async stop(): Promise<void> {
    this.stopping = true;
    const worker = this.worker;
    if (!worker) return;
    worker.postMessage('stop');
    const timer = setTimeout(() => void worker.terminate(), 2000);
    await this.exited;
    clearTimeout(timer);
  }
}
