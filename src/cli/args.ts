import { z } from 'zod';
import { describeZodError } from '../events/envelope.js';

/** CLI flags and arguments go through zod like every other input; a bad one exits 2 with one line. */
export function parseArgs<S extends z.ZodType>(command: string, schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) {
    process.stderr.write(`orderflow ${command}: ${describeZodError(r.error)}\n`);
    process.exit(2);
  }
  return r.data;
}

export const seqArg = z.coerce.number().int().positive();

export const portArg = z.coerce.number().int().min(0).max(65535);

/** host:port (a name or an address; no scheme, no credentials). */
export const hostPort = z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'expected host:port, e.g. nats-1:6222');
export const hostPorts = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim()))
  .pipe(z.array(hostPort).min(1));
