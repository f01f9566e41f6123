#!/usr/bin/env node
// The `orderflow` command. Runs the TypeScript sources through tsx, so there is no build step.
import { existsSync } from 'node:fs';
import { register } from 'tsx/esm/api';

// A .env in the working directory fills in what the environment does not set (Node ≥ 20.12).
if (existsSync('.env')) process.loadEnvFile('.env');

register();
const { run } = await import('../src/cli/main.ts');
await run();
