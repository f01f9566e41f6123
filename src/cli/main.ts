import { parseConfig } from '../config/env.js';
import { fail } from './errors.js';
import { program } from './program.js';

// Whatever a command did not handle itself ends here: one line with the cause, the fix and where
// it looked (see errors.ts), never a stack trace.
const commandName = () => process.argv.slice(2).filter((a) => !a.startsWith('-')).slice(0, 2).join(' ') || 'orderflow';
const where = () => {
  try {
    const c = parseConfig(process.env);
    return { natsUrl: c.NATS_URL, databaseUrl: c.DATABASE_URL };
  } catch {
    return {};
  }
};
await program.parseAsync(process.argv).catch((err: unknown) => fail(commandName(), err, where()));
