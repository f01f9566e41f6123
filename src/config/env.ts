import { z } from 'zod';

/**
 * Every setting orderflow reads from the environment, parsed once at start.
 * A bad value stops the process with a message that names the variable (see loadConfig).
 */
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const natsUrl = z
  .string()
  .regex(/^(nats|tls|ws|wss):\/\/[^\s]+$/, 'must look like nats://host:port')
  .describe('NATS server URL');

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
  return { ...c, NATS_ANALYTICS_URL: c.NATS_ANALYTICS_URL ?? c.NATS_URL };
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
