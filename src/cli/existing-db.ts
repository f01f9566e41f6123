import { existsSync } from 'node:fs';
import type { Storage } from '../orders/ports.js';
import { loadConfig } from '../config/env.js';
import { openStorage, storageKind, storageOptions } from '../storage/open.js';
import { databaseLabel, fail, CliError } from './errors.js';

/**
 * The storage for commands that only read: opened read-only, and only if it exists. A command
 * run from the wrong folder (DATABASE_URL's default is relative to the working directory) must
 * say so, not create an empty database there and then fail on its missing tables.
 */
export async function openExistingStorage(command: string, databaseUrl: string): Promise<Storage> {
  requireExistingDb(command, databaseUrl);
  // PostgreSQL's password file and pool size come from the same settings as the URL.
  return openStorage(databaseUrl, { ...storageOptions({ ...loadConfig(), DATABASE_URL: databaseUrl }, command), readOnly: true });
}

export function requireExistingDb(command: string, databaseUrl: string): void {
  // A server database (PostgreSQL) is there or not when connecting; a file can be checked first.
  if (storageKind(databaseUrl) !== 'sqlite') return;
  const file = databaseLabel(databaseUrl);
  if (!existsSync(file))
    fail(
      command,
      new CliError(`no database at ${file} (DATABASE_URL=${databaseUrl}, working directory ${process.cwd()}); run it where \`orderflow setup\` ran, or set DATABASE_URL`),
    );
}
