import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * Runs orderflow's processes side by side with each line prefixed by the process's name.
 * Children run in their own process group, so a Ctrl-C in the terminal reaches only the
 * supervisor, which passes exactly one SIGTERM to each child: a second signal would make a child
 * skip its drain and exit at once (that is what a second Ctrl-C is for).
 * (concurrently would prefix lines too, but forwards the terminal's SIGINT to children that have
 * already received it from the terminal.)
 */
export interface ChildSpec {
  name: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
}

const COLORS = [36, 35, 33, 32, 34, 91, 96];
const useColor = process.stdout.isTTY && !process.env.NO_COLOR;

export function prefixer(name: string, index: number, width: number): (line: string) => string {
  const label = `[${name}]`.padEnd(width + 2);
  const colored = useColor ? `\x1b[${COLORS[index % COLORS.length]}m${label}\x1b[0m` : label;
  return (line) => `${colored} ${line}`;
}

export interface Supervisor {
  /** Resolves with the exit code once every child has exited. */
  done: Promise<number>;
  stop(reason: string): void;
}

export function supervise(specs: ChildSpec[], log: (line: string) => void, opts: { stopTimeoutMs?: number } = {}): Supervisor {
  const width = Math.max(...specs.map((s) => s.name.length));
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  let exitCode = 0;

  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    log(`stopping (${reason})`);
    for (const [, child] of children) if (child.exitCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const [name, child] of children) {
        if (child.exitCode === null && child.signalCode === null) {
          log(`${name} did not stop in time; killing it`);
          child.kill('SIGKILL');
        }
      }
    }, opts.stopTimeoutMs ?? 15_000);
    timer.unref();
  };

  const exits = specs.map(
    (spec, i) =>
      new Promise<void>((resolve) => {
        const child = spawn(process.execPath, spec.args, { env: spec.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
        children.set(spec.name, child);
        const prefix = prefixer(spec.name, i, width);
        for (const stream of [child.stdout, child.stderr]) {
          createInterface({ input: stream! }).on('line', (line) => process.stdout.write(`${prefix(line)}\n`));
        }
        child.once('exit', (code, signal) => {
          if (!stopping) {
            exitCode = 1;
            log(`${spec.name} exited unexpectedly (${signal ?? `code ${code}`}); stopping the others`);
            stop(`${spec.name} died`);
          } else if (code !== 0 && code !== null) {
            exitCode = exitCode || code;
            log(`${spec.name} exited with code ${code}`);
          }
          resolve();
        });
      }),
  );
  return { done: Promise.all(exits).then(() => exitCode), stop };
}
