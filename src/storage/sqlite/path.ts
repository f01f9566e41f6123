import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** `file:./data/orderflow.db` → `./data/orderflow.db` (relative to the working directory). */
export function sqlitePath(databaseUrl: string): string {
  return databaseUrl.replace(/^file:/, '').replace(/\?.*$/, '');
}

/** The database file of a `file:` URL, with its folder created. */
export function sqliteFile(databaseUrl: string): string {
  const path = sqlitePath(databaseUrl);
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  return path;
}
