import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { envSchema, testEnvSchema } from '../config/env.js';
import { API_ERRORS } from '../web/errors.js';

/**
 * Documentation that must not drift from the code, written from it: `npm run docs` rewrites
 * .env.example and the README's tables of settings and of API error codes (between the
 * `<!-- generated:NAME -->` … `<!-- /generated:NAME -->` markers). test/unit/docs.test.ts fails
 * when the files differ from what this would write.
 */
const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
export const README = resolve(ROOT, 'README.md');
export const ENV_EXAMPLE = resolve(ROOT, '.env.example');

interface Setting {
  name: string;
  default: string | undefined;
  description: string;
}

export function settings(schema: z.ZodObject = envSchema): Setting[] {
  // Parsing nothing gives every default, exactly as the app would see them.
  const defaults = schema.parse({}) as Record<string, unknown>;
  return Object.entries(schema.shape).map(([name, entry]) => {
    const description = (entry as z.ZodType).description;
    if (!description) throw new Error(`${name} in the config schema has no .describe(): every setting must say what it does`);
    return { name, default: defaults[name] === undefined ? undefined : String(defaults[name]), description };
  });
}

const plain = (markdown: string) => markdown.replace(/`/g, '');

export function envExample(): string {
  const lines = [
    '# Every setting orderflow reads, with its default. Generated from the schema in',
    '# src/config/env.ts by `npm run docs`: edit the schema, not this file.',
    '# Copy to .env (read from the working directory) and change what you need; an empty value means unset.',
  ];
  for (const s of settings()) lines.push('', `# ${plain(s.description)}`, `${s.name}=${s.default ?? ''}`);
  return `${lines.join('\n')}\n`;
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

export function settingsTable(schema: z.ZodObject = envSchema): string {
  const rows = settings(schema).map((s) => `| \`${s.name}\` | ${s.default === undefined ? '—' : `\`${cell(s.default)}\``} | ${cell(s.description)} |`);
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

export function errorsTable(): string {
  const rows = Object.entries(API_ERRORS).map(([code, e]) => `| \`${code}\` | ${e.status} | ${cell(e.meaning)} |`);
  return ['| `error` | status | when |', '|---|---|---|', ...rows].join('\n');
}

export const GENERATED: Record<string, () => string> = {
  settings: () => settingsTable(envSchema),
  'test-settings': () => settingsTable(testEnvSchema),
  errors: errorsTable,
};

/** The README with every generated section rewritten (a missing marker is an error, not a skip). */
export function renderReadme(readme: string): string {
  let out = readme;
  for (const [name, render] of Object.entries(GENERATED)) {
    const re = new RegExp(`(<!-- generated:${name} -->)[\\s\\S]*?(<!-- /generated:${name} -->)`);
    if (!re.test(out)) throw new Error(`README.md has no <!-- generated:${name} --> … <!-- /generated:${name} --> section`);
    out = out.replace(re, (_m, open: string, close: string) => `${open}\n${render()}\n${close}`);
  }
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(ENV_EXAMPLE, envExample());
  writeFileSync(README, renderReadme(readFileSync(README, 'utf8')));
  process.stdout.write(`wrote ${ENV_EXAMPLE} and the generated sections of ${README}\n`);
}
