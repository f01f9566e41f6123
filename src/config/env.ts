import { z } from 'zod';

/**
 * Every setting orderflow reads from the environment, parsed once at start.
 * A bad value stops the process with a message that names the variable (see loadConfig).
 * Each entry's description is its documentation: `npm run docs` writes .env.example and the
 * README's configuration table from this schema (a test fails when they differ), so a setting
 * added here is documented by rerunning that one command. `.describe()` goes last on each entry.
 */
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
// One URL or several, comma-separated (a cluster: the client picks one and fails over).
const natsUrl = z
  .string()
  .regex(/^(nats|tls|ws|wss):\/\/[^\s,]+(\s*,\s*(nats|tls|ws|wss):\/\/[^\s,]+)*$/, 'must look like nats://host:port (several: comma-separated)');
const file = z.string().min(1);

/**
 * How one NATS connection authenticates and encrypts, for `NATS_` and `NATS_ANALYTICS_`.
 * At most one credential; with none, a process uses its own identity file (see nats/auth).
 */
const natsAuthFields = (p: 'NATS_' | 'NATS_ANALYTICS_') => {
  const which = p === 'NATS_' ? 'the default connection' : 'the analytics connection (unset: as the default connection)';
  return {
    [`${p}CREDS`]: file.optional().describe(`a NATS \`.creds\` file (JWT + nkey seed) for ${which}`),
    [`${p}NKEY_SEED_FILE`]: file.optional().describe(`a file holding a user nkey seed (\`SU…\`), as \`orderflow nats auth init\` writes them, for ${which}`),
    [`${p}USER`]: z.string().min(1).optional().describe(`user name for ${which} (with \`${p}PASSWORD\`)`),
    [`${p}PASSWORD`]: z.string().min(1).optional().describe(`password for ${which}`),
    [`${p}TOKEN`]: z.string().min(1).optional().describe(`token for ${which}`),
    [`${p}TLS_CA`]: file.optional().describe(`CA certificate file that signs the server's certificate, for ${which}`),
    [`${p}TLS_CERT`]: file.optional().describe(`client certificate file (with \`${p}TLS_KEY\`), for ${which}`),
    [`${p}TLS_KEY`]: file.optional().describe(`client key file, for ${which}`),
  } as Record<`${typeof p}${'CREDS' | 'NKEY_SEED_FILE' | 'USER' | 'PASSWORD' | 'TOKEN' | 'TLS_CA' | 'TLS_CERT' | 'TLS_KEY'}`, z.ZodOptional<z.ZodString>>;
};

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development').describe('`development`, `production` (views cached) or `test`'),
  LOG_LEVEL: logLevel.default('info').describe('pino level: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`'),
  ORDERFLOW_PRETTY: z
    .enum(['0', '1'])
    .optional()
    .describe('`1`: human-readable logs; `0`: JSON lines. Unset: pretty when stdout is a terminal (`orderflow start` sets 1 for its children)'),
  HOST: z.string().min(1).default('127.0.0.1').describe('address the web app listens on (`0.0.0.0` for every interface)'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000).describe('port the web app listens on (`0`: any free port)'),
  DATA_DIR: z.string().min(1).default('./data').describe("local data: the embedded nats-server's store and log"),
  DATABASE_URL: z
    .string()
    .regex(
      /^(file:.+|postgres(ql)?:\/\/.+)/i,
      'must be a SQLite URL such as file:./data/orderflow.db or a PostgreSQL URL such as postgresql://user@host:5432/orderflow',
    )
    .default('file:./data/orderflow.db')
    .describe(
      'the database: a SQLite file, `file:<path>` (relative to the working directory), or PostgreSQL, `postgres://` / `postgresql://user:password@host:5432/db` (`?schema=` as for Prisma)',
    ),
  DATABASE_PASSWORD_FILE: file
    .optional()
    .describe('PostgreSQL only: a file holding the database password (used when `DATABASE_URL` has none; keep it owner-only), as docker compose does'),
  DATABASE_POOL_SIZE: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(10)
    .describe("PostgreSQL only: connections each process keeps open at most (every process has its own pool: mind the server's `max_connections`)"),
  NATS_URL: natsUrl.default('nats://127.0.0.1:4222').describe('the `default` NATS connection: orders, payments, jobs (several servers: comma-separated)'),
  // Defaults to NATS_URL: the PoC's "analytics" connection points at the same server until
  // an operator moves metrics to a cluster of their own.
  NATS_ANALYTICS_URL: natsUrl.optional().describe('the `analytics` connection (`metrics.orders`); unset: `NATS_URL`'),
  NATS_EMBEDDED: z
    .enum(['auto', 'cluster', 'never'])
    .default('auto')
    .describe(
      '`auto`: `orderflow start` runs a local `nats-server -js` when nothing answers at `NATS_URL`; `cluster`: it runs a three-node loopback cluster instead (client ports: the three `NATS_URL` lists, or its port and the next two) with R3 streams; `never`: it fails instead',
    ),
  PAYMENT_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(50)
    .max(60_000)
    .default(5000)
    .describe('how long the web app waits for `payments.validate` before keeping the order as `payment_pending`'),
  ORDERS_STREAM_MAX_AGE_DAYS: z.coerce.number().int().min(1).max(3650).default(90).describe('retention of the `ORDERS` stream, in days'),
  PAYMENT_RETRY_BASE_MS: z.coerce
    .number()
    .int()
    .min(10)
    .max(600_000)
    .default(1000)
    .describe('the reconciler asks the payment service again after base, 2×base, 4×base … (at most 60 s)'),
  STUCK_AFTER_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(86_400_000)
    .default(30_000)
    .describe('a paid order unshipped this long gets its fulfilment re-queued by the reconciler'),
  // As the SNS/SQS and EventBridge designs this grew from did.
  MAX_DELIVERIES: z.coerce.number().int().min(1).max(100).default(3).describe('failed deliveries of one message before it goes to the dead letters (`DLQ`)'),
  BACKGROUND_NICE: z.coerce
    .number()
    .int()
    .min(0)
    .max(19)
    .default(10)
    .describe(
      'CPU niceness the workers nobody waits on (activity, reconciler) give themselves, so that when cores are short the web app, payments, fulfillment and NATS go first (`0`: the same as every other process)',
    ),
  ...natsAuthFields('NATS_'),
  ...natsAuthFields('NATS_ANALYTICS_'),
  NATS_IDENTITIES_DIR: file
    .optional()
    .describe('where each process looks for its own NATS identity (`<kind>.nk`) when no credential is given; unset: `DATA_DIR/nats-auth/identities`'),
  ORDERS_STREAM_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1 << 20)
    .default(4 * 1024 ** 3)
    .describe('size cap of `ORDERS` in bytes (full: the oldest events go)'),
  JOBS_STREAM_MAX_AGE_DAYS: z.coerce.number().int().min(2).max(365).default(7).describe('age cap of `JOBS`, in days'),
  JOBS_STREAM_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1 << 20)
    .default(256 * 1024 ** 2)
    .describe('size cap of `JOBS` in bytes (full: new jobs are refused)'),
  DLQ_STREAM_MAX_AGE_DAYS: z.coerce.number().int().min(1).max(3650).default(30).describe('age cap of `DLQ`, in days'),
  DLQ_STREAM_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1 << 20)
    .default(256 * 1024 ** 2)
    .describe('size cap of `DLQ` in bytes (full: the oldest dead letters go)'),
  NATS_STREAM_REPLICAS: z.coerce
    .number()
    .int()
    .min(1)
    .max(5)
    .default(1)
    .describe(
      'copies of every stream (`ORDERS`, `JOBS`, `DLQ`) on a NATS cluster: `1` on one server, `3` on a three-node cluster (one node may die); `orderflow setup` changes existing streams in place',
    ),
  JOB_MAX_DELAY_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .max(86_400_000)
    .default(86_400_000)
    .describe('a job due further ahead than this is dead-lettered on arrival, whoever published it'),

  // ---- the web app's edge (issue 10, HTTP side): who may do what, and how much ----
  ORDERFLOW_OPERATOR_TOKEN: z
    .string()
    .min(24, 'use at least 24 characters (e.g. `openssl rand -base64 32`)')
    .max(512)
    .optional()
    .describe(
      "the operators' secret (sign-in link, `Authorization: Bearer`); unset: generated once into `DATA_DIR/operator-token` (0600), and `orderflow start` prints the sign-in link",
    ),
  ALLOWED_HOSTS: z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().regex(/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/, 'a host name or host:port, comma separated')))
    .default([])
    .describe(
      'more host names (or `host:port`) the web app answers, comma separated, besides `localhost`, `127.0.0.1`, `[::1]` and `HOST`; others get 403 (DNS rebinding)',
    ),
  RATE_LIMIT_ORDERS_PER_MIN: z.coerce
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .default(60)
    .describe('`POST /orders` per client address per minute, then 429 (`0`: off)'),
  RATE_LIMIT_OPERATOR_PER_MIN: z.coerce
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .default(120)
    .describe('dashboard tools, dead-letter retries and sign-in per client address per minute, then 429 (`0`: off)'),
  SSE_MAX_CLIENTS: z.coerce.number().int().min(1).max(100_000).default(500).describe('live (server-sent-event) streams open at once in total; beyond: 503'),
  SSE_MAX_PER_IP: z.coerce.number().int().min(1).max(100_000).default(16).describe('live streams open at once per client address; beyond: 429'),
  HTTP_REQUEST_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .max(600_000)
    .default(15_000)
    .describe("a request's headers (within 10 s) and body must arrive within this, else 408"),
  // ---- end of the web app's edge ----
});

/**
 * Settings the test suites read (never the app): documented beside the app's, from here.
 */
export const testEnvSchema = z.object({
  CHROMIUM_PATH: z.string().min(1).default('/usr/bin/chromium').describe('the Chromium the browser tests drive'),
  SCREENSHOT_DIR: z.string().min(1).optional().describe("where the browser tests save screenshots (`docs/screenshots` retakes the README's)"),
  TEST_LOG_LEVEL: logLevel.default('silent').describe('log level of the processes the tests start in-process'),
  FAULTS_LOG_DIR: z.string().min(1).optional().describe("`npm run test:faults` keeps every process's log here"),
  POSTGRES_BIN_DIR: z
    .string()
    .min(1)
    .optional()
    .describe("the folder with PostgreSQL's `initdb` and `pg_ctl` the tests start servers with; unset: the newest `/usr/lib/postgresql/<v>/bin`, else `PATH`"),
});

export type Config = Omit<z.infer<typeof envSchema>, 'NATS_ANALYTICS_URL'> & { NATS_ANALYTICS_URL: string };

export class ConfigError extends Error {}

export function parseConfig(env: NodeJS.ProcessEnv): Config {
  // Empty strings (as left by `FOO=` in a .env file) mean "unset", not "invalid".
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
  const result = envSchema.safeParse(cleaned);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid environment configuration:\n${lines.join('\n')}`);
  }
  const c = result.data;
  const problems = [...natsAuthProblems(c, 'NATS_'), ...natsAuthProblems(c, 'NATS_ANALYTICS_')];
  if (problems.length) throw new ConfigError(`Invalid environment configuration:\n${problems.map((l) => `  ${l}`).join('\n')}`);
  return { ...c, NATS_ANALYTICS_URL: c.NATS_ANALYTICS_URL ?? c.NATS_URL };
}

/** What zod cannot see field by field: one credential per connection, a certificate with its key. */
function natsAuthProblems(c: z.infer<typeof envSchema>, p: 'NATS_' | 'NATS_ANALYTICS_'): string[] {
  const get = (k: string) => (c as Record<string, unknown>)[`${p}${k}`];
  const given = ['CREDS', 'NKEY_SEED_FILE', 'USER', 'TOKEN'].filter((k) => get(k) !== undefined);
  const url = p === 'NATS_' ? c.NATS_URL : c.NATS_ANALYTICS_URL;
  if (url && /:\/\/[^/\s,]*@/.test(url)) given.push('URL credentials');
  const problems: string[] = [];
  if (given.length > 1) problems.push(`${p}*: give one NATS credential, not ${given.map((g) => (g.startsWith('URL') ? g : p + g)).join(' and ')}`);
  if (get('PASSWORD') !== undefined && get('USER') === undefined) problems.push(`${p}PASSWORD: needs ${p}USER`);
  if ((get('TLS_CERT') === undefined) !== (get('TLS_KEY') === undefined))
    problems.push(`${p}TLS_CERT and ${p}TLS_KEY: give both (a client certificate and its key) or neither`);
  return problems;
}

/** For entry points: prints the problem and exits 1 rather than throwing a stack trace at an operator. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
