import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** views/ and public/ sit at the project root, wherever the process was started from. */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
