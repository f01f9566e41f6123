import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { nodeFlags } from '../../src/runtime/node-flags.js';

/** The real `orderflow` command, run as a user runs it. */
export const BIN = resolve(import.meta.dirname, '../../bin/orderflow.mjs');

/**
 * Tests, the fault harness and the bench send thousands of requests from one address: the
 * per-IP rate limits (on by default for a real shop) are off unless the caller's env sets them.
 */
const TEST_ENV = { RATE_LIMIT_ORDERS_PER_MIN: '0', RATE_LIMIT_OPERATOR_PER_MIN: '0' };

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a CLI command to completion (bounded by timeoutMs). */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...nodeFlags(args), BIN, ...args], {
      env: { ...process.env, ...TEST_ENV, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`orderflow ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** How a process ended, recorded when it happened. */
export interface ExitRecord {
  code: number | null;
  /** Set when a signal ended it: SIGKILL, SIGSEGV, SIGABRT (a V8 abort), the OOM killer's SIGKILL. */
  signal: NodeJS.Signals | null;
  /** Whether `stop()` had been called before it exited: a planned exit, not a crash. */
  requested: boolean;
  at: Date;
}

export interface Running {
  name: string;
  child: ChildProcess;
  output(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends `signal` and resolves with the exit code (SIGKILLs after timeoutMs). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  exited: Promise<number | null>;
  /** null while it runs. A process that died before `stop()` was called stays `requested: false`. */
  readonly exit: ExitRecord | null;
}

/** Starts a long-running CLI command (a worker, the web app, `start`). */
/**
 * An orderflow process linked to this one as `orderflow start` links its children (an IPC
 * channel: see src/cli/supervisor-link.ts), so it shuts down by itself when the test process
 * dies, even by SIGKILL, instead of outliving it and holding its ports.
 */
export function spawnCli(name: string, args: string[], env: Record<string, string>, opts: SpawnOptions = {}): Running {
  return spawnProcess(name, process.execPath, [...nodeFlags(args), BIN, ...args], { ...TEST_ENV, ...env }, { ipc: true, ...opts });
}

/**
 * stdin: a pipe the test can write to (e.g. commands for `orderflow start`); cwd: where to run;
 * detached: in a process group of its own, which `process.kill(-pid, sig)` signals as a terminal's
 * Ctrl-C does (everything in the foreground group).
 */
export interface SpawnOptions {
  stdin?: boolean;
  /** An IPC channel to the child (a Node process): it sees 'disconnect' when we are gone. */
  ipc?: boolean;
  cwd?: string;
  detached?: boolean;
}

/** Starts any long-running command with its output captured and its exit recorded. */
export function spawnProcess(name: string, command: string, args: string[], env: Record<string, string>, opts: SpawnOptions = {}): Running {
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(opts.ipc ? (['ipc'] as const) : [])],
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.detached ? { detached: true } : {}),
  });
  // The channel must not keep this process alive, nor its messages ('ready') pile up.
  child.channel?.unref();
  let out = '';
  let stopRequested = false;
  let exit: ExitRecord | null = null;
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((r) =>
    child.once('exit', (code, signal) => {
      exit = { code, signal, requested: stopRequested, at: new Date() };
      r(code);
    }),
  );
  return {
    name,
    child,
    exited,
    get exit() {
      return exit;
    },
    output: () => out,
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((res, rej) => {
        const check = () => {
          if (pattern.test(out)) {
            listeners.delete(check);
            clearTimeout(timer);
            res();
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          rej(new Error(`${name}: no ${pattern} within ${timeoutMs} ms. Output:\n${out.slice(-3000)}`));
        }, timeoutMs);
        listeners.add(check);
        check();
        void exited.then(() => {
          if (listeners.has(check)) {
            listeners.delete(check);
            clearTimeout(timer);
            rej(new Error(`${name} exited before printing ${pattern}. Output:\n${out.slice(-3000)}`));
          }
        });
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      stopRequested = true;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

/**
 * Whether `pid` still runs. A process that has exited but not been reaped (a zombie) does not:
 * an orphan's zombie waits for PID 1 to reap it, and a container's PID 1 may take seconds or
 * never (CI's did, and `kill(pid, 0)` kept saying the dead worker was there).
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..."; comm may hold spaces or parentheses, the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    // No /proc (not Linux) or already reaped between the two checks.
    return !existsSync('/proc');
  }
}
