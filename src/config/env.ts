import { z } from 'zod';

/**
 * Every setting orderflow reads from the environment, parsed once at start.
 * A bad value stops the process with a message that names the variable (see loadConfig).
 * Each entry's description is its documentation: `npm run docs` writes .env.example and the
 * README's configuration table from this schema (a test fails when they differ), so a setting
 * added here is documented by rerunning that one command. `.describe()` goes last on each entry.
 */
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const natsUrl = z.string().regex(/^(nats|tls|ws|wss):\/\/[^\s]+$/, 'must look like nats://host:port');

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development').describe('`development`, `production` (views cached) or `test`'),
  LOG_LEVEL: logLevel.default('info').describe('pino level: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`'),
  ORDERFLOW_PRETTY: z
    .enum(['0', '1'])
    .optional()
    .describe('`1`: human-readable logs; `0`: JSON lines. Unset: pretty when stdout is a terminal (`orderflow start` sets 1 for its children)'),
  HOST: z.string().min(1).default('127.0.0.1').describe('address the web app listens on (`0.0.0.0` for every interface)'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000).describe('port the web app listens on (`0`: any free port)'),
  DATA_DIR: z.string().min(1).default('./data').describe('local data: the embedded nats-server\'s store and log'),
  DATABASE_URL: z
    .string()
    .regex(/^file:.+/, 'must be a SQLite URL such as file:./data/orderflow.db')
    .default('file:./data/orderflow.db')
    .describe('SQLite database file (a relative path is relative to the working directory)'),
  NATS_URL: natsUrl.default('nats://127.0.0.1:4222').describe('the `default` NATS connection: orders, payments, jobs'),
  // Defaults to NATS_URL: the PoC's "analytics" connection points at the same server until
  // an operator moves metrics to a cluster of their own.
  NATS_ANALYTICS_URL: natsUrl.optional().describe('the `analytics` connection (`metrics.orders`); unset: `NATS_URL`'),
  NATS_EMBEDDED: z
    .enum(['auto', 'never'])
    .default('auto')
    .describe('`auto`: `orderflow start` runs a local `nats-server -js` when nothing answers at `NATS_URL`; `never`: it fails instead'),
  PAYMENT_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(5000).describe('how long the web app waits for `payments.validate` before keeping the order as `payment_pending`'),
  ORDERS_STREAM_MAX_AGE_DAYS: z.coerce.number().int().min(1).max(3650).default(90).describe('retention of the `ORDERS` stream, in days'),
  PAYMENT_RETRY_BASE_MS: z.coerce
    .number()
    .int()
    .min(10)
    .max(600_000)
    .default(1000)
    .describe('the reconciler asks the payment service again after base, 2×base, 4×base … (at most 60 s)'),
  STUCK_AFTER_MS: z.coerce.number().int().min(100).max(86_400_000).default(30_000).describe('a paid order unshipped this long gets its fulfilment re-queued by the reconciler'),
  // As the SNS/SQS and EventBridge designs this grew from did.
  MAX_DELIVERIES: z.coerce.number().int().min(1).max(100).default(3).describe('failed deliveries of one message before it goes to the dead letters (`DLQ`)'),
});

/**
 * Settings the test suites read (never the app): documented beside the app's, from here.
 */
export const testEnvSchema = z.object({
  CHROMIUM_PATH: z.string().min(1).default('/usr/bin/chromium').describe('the Chromium the browser tests drive'),
  SCREENSHOT_DIR: z.string().min(1).optional().describe('where the browser tests save screenshots (`docs/screenshots` retakes the README\'s)'),
  TEST_LOG_LEVEL: logLevel.default('silent').describe('log level of the processes the tests start in-process'),
  FAULTS_LOG_DIR: z.string().min(1).optional().describe('`npm run test:faults` keeps every process\'s log here'),
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
