import { spawn, type ChildProcess } from 'node:child_process';
import cluster from 'node:cluster';
import { createInterface } from 'node:readline';
import { EXIT_CONFIG } from './errors.js';
import type { SupervisorMessage } from './supervisor-link.js';
import { answerMetricsRequest } from '../observability/cluster-metrics.js';

/**
 * Runs orderflow's processes side by side, like a small process manager:
 * - each line a child prints is prefixed by its name;
 * - a child that crashes (non-zero exit, or killed) is restarted with backoff (1 s, 2 s, 4 s … 30 s;
 *   back to 1 s once it has run for a minute), and the log says so;
 * - a child that stops cleanly (exit 0, or asked to with SIGINT/SIGTERM) is reported and left
 *   down, so "what if the payment service is not running?" can be tried here; `start <name>` on
 *   the supervisor's stdin runs it again (`stop <name>`, `restart <name>`, `status` too);
 * - a child that cannot start because of a setting (EXIT_CONFIG: a port in use, a bad value)
 *   stops everything: every retry would fail the same way;
 * - Ctrl-C stops all: children run in their own process group, so the terminal's SIGINT reaches
 *   only the supervisor, which passes exactly one SIGTERM to each child (a second signal would
 *   make a child skip its drain).
 * Each child has an IPC channel: it reports readiness through it, and notices through it when the
 * supervisor is gone, even after a SIGKILL (cli/supervisor-link.ts).
 * Every child is one instance (`payments-2`): restarts, backoff, `stop`/`start`/`restart` and `status`
 * are per instance; a command naming a kind (`stop payments`) applies to each of its instances.
 * (concurrently would prefix lines too, but forwards the terminal's SIGINT to children that have
 * already received it, and restarts nothing; pm2 is a daemon of its own, more than one terminal needs.)
 */
export interface ChildSpec {
  /** The instance's name (`payments-2`): its log prefix and what commands call it. */
  name: string;
  /** Its kind (`payments`): a command naming the kind addresses every instance of it. */
  kind: string;
  /** Runs `node ...execArgv script ...args`. */
  execArgv: string[];
  script: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /**
   * Forked as a node:cluster worker of this process, so that every child with this set shares the
   * listening sockets they open (the web copies on one PORT; see commands/start.ts).
   */
  sharesListeners?: boolean;
}

const COLORS = [36, 35, 33, 32, 34, 91, 96];
const useColor = process.stdout.isTTY && !process.env.NO_COLOR;

export function prefixer(name: string, index: number, width: number): (line: string) => string {
  const label = `[${name}]`.padEnd(width + 2);
  const colored = useColor ? `\x1b[${COLORS[index % COLORS.length]}m${label}\x1b[0m` : label;
  return (line) => `${colored} ${line}`;
}

export interface Supervisor {
  /** Resolves with the exit code once stop() was called and every child has exited. */
  done: Promise<number>;
  stop(reason: string): void;
  /** Runs one command as typed on stdin: start|stop|restart <name>, status. */
  command(line: string): void;
  /** Each instance's state and pid, as `status` prints them. */
  status(): { name: string; kind: string; state: State; pid?: number | undefined; restarts: number }[];
}

export interface SuperviseOptions {
  /** How long a child may take to stop before it is killed (children bound themselves below this). */
  stopTimeoutMs?: number;
  /** Called for each message a child sends (e.g. the web app's `ready` with its address). */
  onMessage?: (spec: ChildSpec, msg: SupervisorMessage) => void;
  /** Commands, one per line (process.stdin for a person at a terminal). */
  commands?: NodeJS.ReadableStream;
  backoff?: { firstMs: number; maxMs: number; stableAfterMs: number };
}

export type State = 'running' | 'restarting' | 'down';

interface Entry {
  spec: ChildSpec;
  index: number;
  child?: ChildProcess;
  state: State;
  startedAt: number;
  restarts: number;
  nextDelayMs: number;
  timer?: NodeJS.Timeout;
  /** Set when someone asked this child to stop (stop/restart command): its exit is not a crash. */
  asked?: 'stop' | 'restart';
}

const CLEAN_SIGNALS = new Set(['SIGINT', 'SIGTERM']);

export function supervise(specs: ChildSpec[], log: (line: string) => void, opts: SuperviseOptions = {}): Supervisor {
  const backoff = opts.backoff ?? { firstMs: 1000, maxMs: 30_000, stableAfterMs: 60_000 };
  const width = Math.max(...specs.map((s) => s.name.length));
  const entries = new Map(specs.map((spec, index) => [spec.name, { spec, index, state: 'down', startedAt: 0, restarts: 0, nextDelayMs: backoff.firstMs } as Entry]));
  let stopping = false;
  let exitCode = 0;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  const alive = (e: Entry) => !!e.child && e.child.exitCode === null && e.child.signalCode === null;
  const checkDone = () => {
    if (stopping && [...entries.values()].every((e) => !alive(e))) resolveDone(exitCode);
  };

  const launch = (e: Entry) => {
    e.timer = undefined;
    const { execArgv, script, args, env } = e.spec;
    const stdio: ['ignore', 'pipe', 'pipe', 'ipc'] = ['ignore', 'pipe', 'pipe', 'ipc'];
    let child: ChildProcess;
    if (e.spec.sharesListeners) {
      // cluster.fork has no `detached`: these children stay in our process group (see
      // runtime/shutdown.ts for what that means for a Ctrl-C). Settings are read at each fork.
      cluster.setupPrimary({ exec: script, args, execArgv, stdio });
      child = cluster.fork(env ?? process.env).process;
    } else {
      child = spawn(process.execPath, [...execArgv, script, ...args], { env: env ?? process.env, stdio, detached: true });
    }
    e.child = child;
    e.state = 'running';
    e.startedAt = Date.now();
    const prefix = prefixer(e.spec.name, e.index, width);
    for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream! }).on('line', (line) => process.stdout.write(`${prefix(line)}\n`));
    child.on('message', (msg: SupervisorMessage) => {
      if (e.spec.sharesListeners && answerMetricsRequest(child, msg)) return;
      opts.onMessage?.(e.spec, msg);
    });
    // A failed spawn (no such executable) also ends in 'exit' for Node children; log it either way.
    child.once('error', (err) => log(`${e.spec.name} could not be started: ${err.message}`));
    child.once('exit', (code, signal) => onExit(e, child, code, signal));
  };

  const onExit = (e: Entry, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null) => {
    if (e.child !== child) return;
    const how = signal ?? `code ${code}`;
    const asked = e.asked;
    e.asked = undefined;
    if (stopping) {
      if (code !== 0 && code !== null) {
        exitCode = exitCode || code;
        log(`${e.spec.name} exited with code ${code}`);
      }
      e.state = 'down';
      return checkDone();
    }
    if (asked === 'restart') {
      log(`${e.spec.name} stopped (${how}); starting it again`);
      return launch(e);
    }
    if (asked === 'stop' || code === 0 || (signal && CLEAN_SIGNALS.has(signal))) {
      e.state = 'down';
      log(`${e.spec.name} stopped (${how}) and stays down; type \`start ${e.spec.name}\` here to run it again`);
      return;
    }
    if (code === EXIT_CONFIG) {
      exitCode = 1;
      e.state = 'down';
      log(`${e.spec.name} cannot start with this configuration (its message is above); stopping everything`);
      return stop(`${e.spec.name} cannot start`);
    }
    if (Date.now() - e.startedAt >= backoff.stableAfterMs) e.nextDelayMs = backoff.firstMs;
    const delay = e.nextDelayMs;
    e.nextDelayMs = Math.min(backoff.maxMs, delay * 2);
    e.restarts++;
    e.state = 'restarting';
    log(`${e.spec.name} exited unexpectedly (${how}); restarting it in ${delay / 1000} s (restart ${e.restarts})`);
    e.timer = setTimeout(() => launch(e), delay);
  };

  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    log(`stopping (${reason})`);
    for (const e of entries.values()) {
      if (e.timer) clearTimeout(e.timer);
      e.timer = undefined;
      if (alive(e)) e.child!.kill('SIGTERM');
    }
    const timer = setTimeout(() => {
      for (const e of entries.values()) {
        if (alive(e)) {
          log(`${e.spec.name} did not stop in time; killing it`);
          e.child!.kill('SIGKILL');
        }
      }
    }, opts.stopTimeoutMs ?? 11_000);
    timer.unref();
    checkDone();
  };

  const kinds = [...new Set(specs.map((s) => s.kind))];
  const names = () => [...new Set([...kinds, ...entries.keys()])].join(', ');
  const command = (line: string) => {
    const [verb, name] = line.trim().split(/\s+/);
    if (!verb) return;
    if (verb === 'status') {
      for (const e of entries.values()) log(`${e.spec.name}: ${e.state}${alive(e) ? ` (pid ${e.child!.pid})` : ''}${e.restarts ? `, ${e.restarts} restart(s)` : ''}`);
      return;
    }
    // An instance by its name; a kind is each of its instances (one, unless --scale said more).
    const targets = name === undefined ? [] : entries.has(name) ? [entries.get(name)!] : [...entries.values()].filter((e) => e.spec.kind === name);
    if (!['start', 'stop', 'restart'].includes(verb) || targets.length === 0) {
      log(`commands: start <name>, stop <name>, restart <name>, status (names: ${names()}); Ctrl-C stops everything`);
      return;
    }
    if (stopping) return;
    for (const e of targets) act(verb as 'start' | 'stop' | 'restart', e);
  };
  const act = (verb: 'start' | 'stop' | 'restart', e: Entry) => {
    const name = e.spec.name;
    if (verb === 'start') {
      if (alive(e)) return log(`${name} is already running (pid ${e.child!.pid})`);
      if (e.timer) clearTimeout(e.timer);
      e.nextDelayMs = backoff.firstMs;
      log(`starting ${name}`);
      return launch(e);
    }
    if (!alive(e)) {
      if (e.timer) clearTimeout(e.timer);
      e.timer = undefined;
      e.state = 'down';
      return verb === 'restart' ? launch(e) : log(`${name} is not running`);
    }
    e.asked = verb;
    log(`${verb === 'stop' ? 'stopping' : 'restarting'} ${name}`);
    e.child!.kill('SIGTERM');
  };

  if (opts.commands) createInterface({ input: opts.commands }).on('line', command);
  for (const e of entries.values()) launch(e);
  const status = () => [...entries.values()].map((e) => ({ name: e.spec.name, kind: e.spec.kind, state: e.state, pid: alive(e) ? e.child!.pid : undefined, restarts: e.restarts }));
  return { done, stop, command, status };
}
