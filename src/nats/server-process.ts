import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, createWriteStream, mkdirSync } from 'node:fs';

/**
 * Runs a local `nats-server -js` (for `orderflow start` when nothing answers at NATS_URL, and for
 * the tests, which each start their own on a free port with their own store dir).
 */
export interface NatsServerProcess {
  url: string;
  port: number;
  storeDir: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export const NATS_INSTALL_HINT =
  'nats-server was not found on PATH. Install it (Debian/Ubuntu: `sudo apt-get install nats-server`; macOS: `brew install nats-server`), ' +
  'point NATS_URL at a running server, or run `docker compose up -d nats`.';

export function natsServerAvailable(): boolean {
  return spawnSync('nats-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** port 0 lets nats-server choose a free port (it prints the one it chose, which we read). */
/** `configFile`: a nats-server config (e.g. the generated authorization, see auth/identities.ts); the flags here override its listen and store settings. */
export function startNatsServer(opts: { host?: string; port?: number; storeDir: string; configFile?: string; logFile?: string; extraArgs?: string[] }): Promise<NatsServerProcess> {
  const host = opts.host ?? '127.0.0.1';
  // The store holds every event, customers' emails included: owner-only.
  mkdirSync(opts.storeDir, { recursive: true, mode: 0o700 });
  chmodSync(opts.storeDir, 0o700);
  const args = [...(opts.configFile ? ['-c', opts.configFile] : []), '-js', '-a', host, '-p', String(opts.port && opts.port > 0 ? opts.port : -1), '-sd', opts.storeDir, ...(opts.extraArgs ?? [])];
  const child = spawn('nats-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => fail(new Error(`nats-server did not start within 10 s:\n${output}`)), 10_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /Listening for client connections on [^\s]*:(\d+)/.exec(output);
      if (m && /Server is ready/.test(output)) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onData);
        // Keep draining its output so a chatty server never blocks on a full pipe.
        if (opts.logFile) {
          const log = createWriteStream(opts.logFile, { flags: 'a' });
          log.write(output);
          child.stdout?.pipe(log);
          child.stderr?.pipe(log);
        } else {
          child.stdout?.resume();
          child.stderr?.resume();
        }
        const port = Number(m[1]);
        resolve({
          url: `nats://${host}:${port}`,
          port,
          storeDir: opts.storeDir,
          child,
          stop: () => stopChild(child),
        });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (err) => fail((err as NodeJS.ErrnoException).code === 'ENOENT' ? new Error(NATS_INSTALL_HINT) : err));
    child.once('exit', (code) => fail(new Error(`nats-server exited with code ${code}:\n${output}`)));
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
