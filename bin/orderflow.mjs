#!/usr/bin/env -S node --max-semi-space-size=2
// The `orderflow` command. Runs the TypeScript sources through tsx, so there is no build step.
// The V8 flag on the first line: see src/runtime/node-flags.ts.
import { existsSync } from 'node:fs';
import { register } from 'tsx/esm/api';

// A .env in the working directory fills in what the environment does not set (Node ≥ 20.12).
if (existsSync('.env')) process.loadEnvFile('.env');

register();
await import('../src/cli/main.ts');
