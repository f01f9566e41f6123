import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const WATCHDOG = resolve(dirname(fileURLToPath(import.meta.url)), 'watchdog.sh');

/**
 * Runs a local `nats-server -js` (for `orderflow start` when nothing answers at NATS_URL, and for
 * the tests, which each start their own on a free port with their own store dir).
 */
export interface NatsServerProcess {
  url: string;
  port: number;
  storeDir: string;
  child: ChildProcess;
  /** nats-server's own pid (with `watchParent`, `child` is the watchdog around it). */
  pid: number;
  stop(): Promise<void>;
}

export const NATS_INSTALL_HINT =
  'nats-server was not found on PATH. Install it (Debian/Ubuntu: `sudo apt-get install nats-server`; macOS: `brew install nats-server`), ' +
  'point NATS_URL at a running server, or run `docker compose up -d nats-1 nats-2 nats-3` (a three-node cluster on 127.0.0.1:4222-4224).';

export function natsServerAvailable(): boolean {
  return spawnSync('nats-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * port 0 lets nats-server choose a free port (it prints the one it chose, which we read).
 * `configFile`: a nats-server config (e.g. the generated authorization, see auth/identities.ts);
 * the flags here override its listen and store settings.
 * `watchParent` (for `orderflow start`): run it under watchdog.sh, which stops it when this
 * process is gone, even after a SIGKILL; it then logs to `logFile` rather than to a pipe of ours
 * (a Go program writing to a pipe whose reader died is killed by SIGPIPE, mid-shutdown).
 * `logFile` alone: nats-server writes its log there (`-l`), e.g. to read permission violations.
 */
export function startNatsServer(opts: { host?: string; port?: number; storeDir: string; configFile?: string; extraArgs?: string[]; watchParent?: boolean; logFile?: string }): Promise<NatsServerProcess> {
  const host = opts.host ?? '127.0.0.1';
  // The store holds every event, customers' emails included: owner-only.
  mkdirSync(opts.storeDir, { recursive: true, mode: 0o700 });
  chmodSync(opts.storeDir, 0o700);
  const args = [...(opts.configFile ? ['-c', opts.configFile] : []), '-js', '-a', host, '-p', String(opts.port && opts.port > 0 ? opts.port : -1), '-sd', opts.storeDir, ...(opts.extraArgs ?? [])];
  const logFile = opts.logFile ?? (opts.watchParent ? resolve(opts.storeDir, '..', 'nats-server.log') : undefined);
  // Only what this run writes to the log file counts (it keeps earlier runs' lines).
  const logOffset = logFile && existsSync(logFile) ? statSync(logFile).size : 0;
  const child = opts.watchParent
    ? spawn('sh', [WATCHDOG, 'nats-server', ...args, '-l', logFile!], { stdio: ['pipe', 'ignore', 'ignore'] })
    : logFile
      ? spawn('nats-server', [...args, '-l', logFile], { stdio: ['ignore', 'ignore', 'ignore'] })
      : spawn('nats-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolvePromise, reject) => {
    let output = '';
    let poll: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => fail(new Error(`nats-server did not start within 10 s:\n${output}`)), 10_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      clearInterval(poll);
      // The watchdog passes SIGTERM on to nats-server; a SIGKILL would orphan it.
      child.kill(logFile ? 'SIGTERM' : 'SIGKILL');
      reject(err);
    };
    const onData = (chunk: Buffer | string) => {
      output += chunk.toString();
      const m = /Listening for client connections on [^\s]*:(\d+)/.exec(output);
      if (m && /Server is ready/.test(output)) {
        clearTimeout(timer);
        clearInterval(poll);
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onData);
        // Keep draining its output so a chatty server never blocks on a full pipe.
        child.stdout?.resume();
        child.stderr?.resume();
        child.removeAllListeners('exit');
        const port = Number(m[1]);
        const pid = Number(/^\[(\d+)\]/m.exec(output)?.[1] ?? child.pid);
        resolvePromise({ url: `nats://${host}:${port}`, port, storeDir: opts.storeDir, child, pid, stop: () => stopChild(child) });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    if (logFile) poll = setInterval(() => onData(readFrom(logFile, logOffset + Buffer.byteLength(output))), 50);
    child.once('error', (err) => fail((err as NodeJS.ErrnoException).code === 'ENOENT' ? new Error(NATS_INSTALL_HINT) : err));
    child.once('exit', (code) => fail(new Error(`nats-server exited with code ${code}:\n${output}${logFile ? `\n(its log: ${logFile})` : ''}`)));
  });
}

/** What was appended to `file` since byte `offset` ('' while it does not exist). */
function readFrom(file: string, offset: number): string {
  if (!existsSync(file)) return '';
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const n = readSync(fd, buf, 0, buf.length, offset);
    return buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
