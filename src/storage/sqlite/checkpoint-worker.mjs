// The checkpointer's thread (see checkpointer.ts): plain JavaScript, so it loads without tsx.
// It polls how much of the WAL is not yet copied into the database file (a NOOP checkpoint only
// reads the WAL index) and runs the checkpoints on its own connection, so no event loop does.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/** @type {{ file: string, everyMs: number, frames: number, restartFrames: number, restartWaitMs: number }} */
const { file, everyMs, frames, restartFrames, restartWaitMs } = workerData;

const db = new Database(file, { fileMustExist: true, timeout: restartWaitMs });
// A checkpoint syncs the WAL before copying it and the database file after: with FULL, as the
// writers commit, a crash mid-checkpoint loses nothing.
db.pragma('synchronous = FULL');

/** @param {'NOOP' | 'PASSIVE' | 'RESTART'} mode */
const checkpoint = (mode) => /** @type {{ busy: number, log: number, checkpointed: number }} */ (db.pragma(`wal_checkpoint(${mode})`)[0]);

/** The WAL's length when this thread last restarted it: what NOOP reports until the next commit writes it anew. */
let restartedAt = -1;

const tick = () => {
  try {
    const wal = checkpoint('NOOP');
    const waiting = wal.log - wal.checkpointed;
    const restartDue = wal.log >= restartFrames && wal.log !== restartedAt;
    if (waiting < frames && !restartDue) return;
    // PASSIVE copies what it can without taking the write lock: writers go on meanwhile. Another
    // process's checkpointer running already makes it busy; that one does the work.
    const passive = waiting > 0 ? checkpoint('PASSIVE') : wal;
    let restarted = false;
    // Writers that commit during every checkpoint keep the WAL from starting over (SQLite restarts
    // it only when a writer finds it all copied). Past restartFrames, RESTART takes the write lock
    // to copy the last frames, and the next writer starts the WAL from its beginning again.
    if (passive.busy === 0 && passive.log >= restartFrames && passive.log !== restartedAt) {
      const restart = checkpoint('RESTART');
      restarted = restart.busy === 0;
      if (restarted) restartedAt = restart.log;
    }
    parentPort?.postMessage({ frames: passive.checkpointed - wal.checkpointed, log: passive.log, restarted });
  } catch (err) {
    // SQLITE_BUSY past restartWaitMs (a long reader): the next tick tries again.
    if (!String(err?.code).startsWith('SQLITE_BUSY')) throw err;
  }
};

const timer = setInterval(tick, everyMs);
parentPort?.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort?.close();
});
