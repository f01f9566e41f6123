import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './processes.js';

/**
 * A real PostgreSQL server per test file (or per fault scenario), started the way the tests start
 * nats-server: `initdb` into a fresh temp dir, a free loopback port, its unix socket inside that
 * dir, trust authentication for the `postgres` role, and everything removed when it stops.
 * PostgreSQL refuses to run as root, so under root every binary runs as the `postgres` user
 * (`runuser`), in a dir it owns. The server keeps fsync on: commits cost what they cost a user.
 *
 * Startup (initdb + pg_ctl start -w) takes 0.8–2.4 s on the shared 2-core machine; a fresh
 * database on a running server (`createDatabase`) 0.1–0.7 s, a fresh schema (`createSchema`) a
 * few ms, so a file wanting isolation between its tests asks for one of those, not a server.
 *
 * The server is a daemon (pg_ctl detaches it), so it cannot die with us by itself: a watchdog
 * (`sh`, its stdin a pipe from this process that nobody writes to) stops it and removes its dir
 * when this process is gone, even after a SIGKILL; a normal exit stops it synchronously.
 */
export interface PostgresServer {
  /** `postgresql://postgres@127.0.0.1:<port>/<database>` (default: the `postgres` database). */
  url(database?: string): string;
  port: number;
  dir: string;
  /** CREATE DATABASE on this server; returns its URL. A name is made up when none is given. */
  createDatabase(name?: string): Promise<string>;
  /**
   * CREATE SCHEMA in the `postgres` database; returns a URL with Prisma's `?schema=` (which
   * orderflow honours). Cheaper than a database (a few ms against ~0.5 s with fsync on).
   */
  createSchema(name?: string): Promise<string>;
  /** Stops the server (`fast`: disconnects clients, clean shutdown; `immediate`: like a crash). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts it again on the same port and data (after `stop`). */
  start(): Promise<void>;
  restart(mode?: 'fast' | 'immediate'): Promise<void>;
  running(): boolean;
  /** The server's log so far (for failure messages). */
  log(): string;
  /** Stops it and removes its dir. */
  close(): Promise<void>;
}

export const POSTGRES_INSTALL_HINT =
  'PostgreSQL was not found: install it (Debian/Ubuntu: `sudo apt-get install postgresql`; macOS: `brew install postgresql@15`) or set POSTGRES_BIN_DIR to the folder holding initdb and pg_ctl.';

/** Where initdb and pg_ctl are: POSTGRES_BIN_DIR, Debian's newest /usr/lib/postgresql/<v>/bin, else PATH. */
export function postgresBinDir(): string | undefined {
  if (process.env.POSTGRES_BIN_DIR) return process.env.POSTGRES_BIN_DIR;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  const which = spawnSync('sh', ['-c', 'command -v pg_ctl'], { encoding: 'utf8' });
  return which.status === 0 ? join(which.stdout.trim(), '..') : undefined;
}

export function postgresAvailable(): boolean {
  return postgresBinDir() !== undefined;
}

const asRoot = process.getuid?.() === 0;

/** argv that runs `bin` as the server's owner: itself, or the `postgres` user when we are root. */
function asOwner(bin: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

function run(bin: string, args: string[], what: string): Promise<string> {
  const [cmd, argv] = asOwner(bin, args);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.once('error', (err) => reject((err as NodeJS.ErrnoException).code === 'ENOENT' ? new Error(POSTGRES_INSTALL_HINT) : err));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${what} failed (exit ${code}):\n${out}`))));
  });
}

let counter = 0;

export async function startPostgres(opts: { settings?: Record<string, string> } = {}): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (!bin) throw new Error(POSTGRES_INSTALL_HINT);
  const dir = mkdtempSync(join(tmpdir(), 'orderflow-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  if (asRoot) {
    const { uid, gid } = postgresIds();
    chownSync(dir, uid, gid);
  }
  const watchdog = guard(bin, dir, data);
  const pgCtl = join(bin, 'pg_ctl');
  try {
    // --no-sync: initdb's own files need not be on disk (a crash of a test run discards them);
    // the server itself runs with fsync on.
    await run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'], 'initdb');
  } catch (err) {
    cleanup();
    throw err;
  }
  let port = 0;
  let up = false;
  const settings = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    // The suites open a few pools at once; the faults suite runs many processes.
    max_connections: '200',
    shared_buffers: '32MB',
    ...opts.settings,
  };
  const options = () => [`-p ${port}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
  const start = async () => {
    await run(pgCtl, ['-D', data, '-l', logFile, '-o', options(), '-w', '-t', '30', 'start'], 'pg_ctl start');
    up = true;
  };
  // A free port may be taken between asking and binding (other helpers run tests too): try again.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await start();
      break;
    } catch (err) {
      if (attempt >= 3 || !/could not bind|Address already in use/i.test(readLog())) {
        cleanup();
        throw err;
      }
    }
  }

  function readLog(): string {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  }

  let stopped = false;
  function cleanup() {
    if (stopped) return;
    stopped = true;
    process.off('exit', cleanup);
    if (existsSync(join(data, 'postmaster.pid'))) {
      const [cmd, argv] = asOwner(pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop']);
      spawnSync(cmd, argv, { stdio: 'ignore' });
    }
    rmSync(dir, { recursive: true, force: true });
    watchdog.kill('SIGKILL');
  }
  process.once('exit', cleanup);

  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    if (!up) return;
    await run(pgCtl, ['-D', data, '-m', mode, '-w', '-t', '30', 'stop'], 'pg_ctl stop');
    up = false;
  };
  const url = (database = 'postgres') => `postgresql://postgres@127.0.0.1:${port}/${database}`;
  const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: url() });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  return {
    url,
    port,
    dir,
    async createDatabase(name = `test_${process.pid}_${++counter}`) {
      await admin(`CREATE DATABASE ${quote(name)}`);
      return url(name);
    },
    async createSchema(name = `s_${process.pid}_${++counter}`) {
      await admin(`CREATE SCHEMA ${quote(name)}`);
      return `${url()}?schema=${encodeURIComponent(name)}`;
    },
    stop,
    start,
    async restart(mode = 'fast') {
      await stop(mode);
      await start();
    },
    running: () => up,
    log: readLog,
    async close() {
      if (stopped) return;
      await stop('fast').catch(() => {});
      cleanup();
    },
  };
}

function postgresIds(): { uid: number; gid: number } {
  const out = spawnSync('id', ['postgres'], { encoding: 'utf8' }).stdout;
  const uid = /uid=(\d+)/.exec(out)?.[1];
  const gid = /gid=(\d+)/.exec(out)?.[1];
  if (!uid || !gid) throw new Error('running as root, but there is no `postgres` user to run PostgreSQL as (Debian\'s postgresql package creates it)');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * A shell that waits for end of file on its stdin (a pipe only this process holds), then stops
 * the server and removes its dir: the kernel closes the pipe however we die.
 */
function guard(bin: string, dir: string, data: string): ChildProcess {
  const [cmd, argv] = asOwner(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = `while read -r _; do :; done; [ -f ${q(join(data, 'postmaster.pid'))} ] && ${[cmd, ...argv].map(q).join(' ')} >/dev/null 2>&1; rm -rf ${q(dir)}`;
  const child = spawn('sh', ['-c', script], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  return child;
}
