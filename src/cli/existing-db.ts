import { existsSync } from 'node:fs';
import { createDb, type Db } from '../db/client.js';
import { databaseLabel, fail, CliError } from './errors.js';

/**
 * The database for commands that only read: opened read-only, and only if it exists. A command
 * run from the wrong folder (DATABASE_URL's default is relative to the working directory) must
 * say so, not create an empty database there and then fail on its missing tables.
 */
export function openExistingDb(command: string, databaseUrl: string): Db {
  requireExistingDb(command, databaseUrl);
  return createDb(databaseUrl, { readOnly: true });
}

export function requireExistingDb(command: string, databaseUrl: string): void {
  const file = databaseLabel(databaseUrl);
  if (!existsSync(file))
    fail(
      command,
      new CliError(`no database at ${file} (DATABASE_URL=${databaseUrl}, working directory ${process.cwd()}); run it where \`orderflow setup\` ran, or set DATABASE_URL`),
    );
}
