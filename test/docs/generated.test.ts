import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envSchema, testEnvSchema } from '../../src/config/env.js';
import { ENV_EXAMPLE, envExample, README, renderReadme } from '../../src/docs/generate.js';

const ROOT = join(import.meta.dirname, '../..');
const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (f === 'generated' || f === 'node_modules') return [];
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });

describe('documentation generated from the code', () => {
  it('.env.example and the README tables are what `npm run docs` writes', () => {
    expect(readFileSync(ENV_EXAMPLE, 'utf8'), 'run `npm run docs`').toBe(envExample());
    expect(readFileSync(README, 'utf8'), 'run `npm run docs`').toBe(renderReadme(readFileSync(README, 'utf8')));
  });

  it('the app reads no environment variable the schema does not know', () => {
    // Terminal conventions, not orderflow settings.
    const allowed = new Set(['NO_COLOR', 'FORCE_COLOR']);
    const known = new Set([...Object.keys(envSchema.shape), ...Object.keys(testEnvSchema.shape)]);
    const read = new Map<string, string>();
    for (const f of [...files(join(ROOT, 'src')), join(ROOT, 'bin/orderflow.mjs')])
      for (const m of readFileSync(f, 'utf8').matchAll(/process\.env\.([A-Z_][A-Z0-9_]*)|process\.env\[['"]([A-Z_][A-Z0-9_]*)['"]\]/g))
        read.set(m[1] ?? m[2]!, f);
    const unknown = [...read].filter(([name]) => !known.has(name) && !allowed.has(name));
    expect(unknown, 'add them to src/config/env.ts with a description').toEqual([]);
  });
});
