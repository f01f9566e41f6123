import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * pino JSON everywhere; pretty only when a person is watching a terminal.
 * ORDERFLOW_PRETTY (from the config) decides; unset, a terminal does. `orderflow start` sets it to 1 for its children, whose stdout is a pipe
 * to the supervisor that prefixes their lines.
 */
export function createLogger(name: string, level: string, prettySetting?: '0' | '1'): Logger {
  const pretty = prettySetting === '1' || (process.stdout.isTTY && prettySetting !== '0');
  return pino({
    name,
    level,
    base: { process: name },
    ...(pretty
      ? {
          transport: {
            target: 'pino-pretty',
            // One line per entry, so lines prefixed by `orderflow start` stay readable; colours follow
            // the terminal (FORCE_COLOR is set by the supervisor when its own output is one).
            options: { singleLine: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,process' },
          },
        }
      : {}),
  });
}
