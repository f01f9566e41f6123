import { z } from 'zod';

/**
 * Every setting orderflow reads from the environment, parsed once at start.
 * A bad value stops the process with a message that names the variable (see loadConfig).
 */
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
// One URL or several, comma-separated (a cluster: the client picks one and fails over).
const natsUrl = z
  .string()
  .regex(/^(nats|tls|ws|wss):\/\/[^\s,]+(\s*,\s*(nats|tls|ws|wss):\/\/[^\s,]+)*$/, 'must look like nats://host:port (several: comma-separated)')
  .describe('NATS server URL(s)');
const file = z.string().min(1).describe('a file path');

/**
 * How one NATS connection authenticates and encrypts, for `NATS_` and `NATS_ANALYTICS_`.
 * At most one credential; with none, a process uses its own identity file (see nats/auth).
 */
const natsAuthFields = (p: 'NATS_' | 'NATS_ANALYTICS_') => ({
  /** A NATS .creds file (JWT + nkey seed, decentralized auth). */
  [`${p}CREDS`]: file.optional(),
  /** A file holding a user nkey seed (SU…), as `orderflow nats auth init` writes them. */
  [`${p}NKEY_SEED_FILE`]: file.optional(),
  [`${p}USER`]: z.string().min(1).optional(),
  [`${p}PASSWORD`]: z.string().min(1).optional(),
  [`${p}TOKEN`]: z.string().min(1).optional(),
  [`${p}TLS_CA`]: file.optional(),
  [`${p}TLS_CERT`]: file.optional(),
  [`${p}TLS_KEY`]: file.optional(),
}) as Record<`${typeof p}${'CREDS' | 'NKEY_SEED_FILE' | 'USER' | 'PASSWORD' | 'TOKEN' | 'TLS_CA' | 'TLS_CERT' | 'TLS_KEY'}`, z.ZodOptional<z.ZodString>>;

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: logLevel.default('info'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z
    .string()
    .regex(/^file:.+/, 'must be a SQLite URL such as file:./data/orderflow.db')
    .default('file:./data/orderflow.db'),
  NATS_URL: natsUrl.default('nats://127.0.0.1:4222'),
  // Defaults to NATS_URL: the PoC's "analytics" connection points at the same server until
  // an operator moves metrics to a cluster of their own.
  NATS_ANALYTICS_URL: natsUrl.optional(),
  ...natsAuthFields('NATS_'),
  ...natsAuthFields('NATS_ANALYTICS_'),
  // Where each process looks for its own identity (<kind>.nk) when no credential is given.
  NATS_IDENTITIES_DIR: file.optional(),
  // `orderflow start` runs a local `nats-server -js` when nothing answers at NATS_URL.
  NATS_EMBEDDED: z.enum(['auto', 'never']).default('auto'),
  PAYMENT_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(5000),
  ORDERS_STREAM_MAX_AGE_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
  // Failed deliveries of one message before it goes to the dead-letter stream (as the SNS/SQS and
  // EventBridge designs this grew from used).
  // The reconciler asks the payment service again after base, 2×base, 4×base … (capped at 60 s).
  PAYMENT_RETRY_BASE_MS: z.coerce.number().int().min(10).max(600_000).default(1000),
  // An order that sits in a non-final state this long is re-driven by the reconciler.
  STUCK_AFTER_MS: z.coerce.number().int().min(100).max(86_400_000).default(30_000),
  MAX_DELIVERIES: z.coerce.number().int().min(1).max(100).default(3),
  // Stream limits (bounded by design): what `orderflow setup` applies.
  ORDERS_STREAM_MAX_BYTES: z.coerce.number().int().min(1 << 20).default(4 * 1024 ** 3),
  JOBS_STREAM_MAX_AGE_DAYS: z.coerce.number().int().min(2).max(365).default(7),
  JOBS_STREAM_MAX_BYTES: z.coerce.number().int().min(1 << 20).default(256 * 1024 ** 2),
  DLQ_STREAM_MAX_AGE_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  DLQ_STREAM_MAX_BYTES: z.coerce.number().int().min(1 << 20).default(256 * 1024 ** 2),
  // A job due later than this is dead-lettered on arrival (whoever published it).
  JOB_MAX_DELAY_MS: z.coerce.number().int().min(1000).max(86_400_000).default(86_400_000),

  // ---- the web app's edge (issue 10, HTTP side): who may do what, and how much ----
  ORDERFLOW_OPERATOR_TOKEN: z
    .string()
    .min(24, 'use at least 24 characters (e.g. `openssl rand -base64 32`)')
    .max(512)
    .optional()
    .describe('the operators\' secret (sign-in link, `Authorization: Bearer`); unset: generated once into `DATA_DIR/operator-token` (0600), and `orderflow start` prints the sign-in link'),
  ALLOWED_HOSTS: z
    .string()
    .transform((s) => s.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/, 'a host name or host:port, comma separated')))
    .default([])
    .describe('more host names (or `host:port`) the web app answers, comma separated, besides `localhost`, `127.0.0.1`, `[::1]` and `HOST`; others get 403 (DNS rebinding)'),
  RATE_LIMIT_ORDERS_PER_MIN: z.coerce.number().int().min(0).max(1_000_000).default(60).describe('`POST /orders` per client address per minute, then 429 (`0`: off)'),
  RATE_LIMIT_OPERATOR_PER_MIN: z.coerce.number().int().min(0).max(1_000_000).default(120).describe('dashboard tools, dead-letter retries and sign-in per client address per minute, then 429 (`0`: off)'),
  SSE_MAX_CLIENTS: z.coerce.number().int().min(1).max(100_000).default(500).describe('live (server-sent-event) streams open at once in total; beyond: 503'),
  SSE_MAX_PER_IP: z.coerce.number().int().min(1).max(100_000).default(16).describe('live streams open at once per client address; beyond: 429'),
  HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(1000).max(600_000).default(15_000).describe('a request\'s headers (within 10 s) and body must arrive within this, else 408'),
  // ---- end of the web app's edge ----
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
  if ((get('TLS_CERT') === undefined) !== (get('TLS_KEY') === undefined)) problems.push(`${p}TLS_CERT and ${p}TLS_KEY: give both (a client certificate and its key) or neither`);
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
