/**
 * A figure with its spread: every number of every run, gathered by name, as median and range.
 * Pipeline steps are matched across runs by their offered rate (a run stops at its first step not
 * sustained, so a rate may have fewer runs than the others: `n` says how many).
 */
import { round } from './lib.js';

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
  /** For yes/no figures (1/0): in how many runs it held. */
  sum: number;
}

export type Summary = Record<string, Spread>;

/** Numbers by dotted path; arrays of steps keyed by `@<offered_per_s>`; booleans as 0/1. */
function flatten(value: unknown, prefix: string, out: Map<string, number>): void {
  if (typeof value === 'number') {
    if (Number.isFinite(value)) out.set(prefix, value);
  } else if (typeof value === 'boolean') {
    out.set(prefix, value ? 1 : 0);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => flatten(v, `${prefix}@${(v as { offered_per_s?: number }).offered_per_s ?? i}`, out));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  }
}

export function median(sorted: number[]): number {
  const m = sorted.length >> 1;
  return sorted.length % 2 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2;
}

export function summarize(runs: unknown[]): Summary {
  const all = new Map<string, number[]>();
  for (const run of runs) {
    const flat = new Map<string, number>();
    flatten(run, '', flat);
    for (const [k, v] of flat) all.set(k, [...(all.get(k) ?? []), v]);
  }
  const summary: Summary = {};
  for (const [k, vs] of all) {
    vs.sort((a, b) => a - b);
    summary[k] = { median: round(median(vs), 2), min: vs[0]!, max: vs.at(-1)!, n: vs.length, sum: round(vs.reduce((a, b) => a + b, 0), 2) };
  }
  return summary;
}

/** `median [min–max]`, or the one value; `–` when no run measured it. (`n` is left to the caller.) */
export function show(s: Summary, key: string): string {
  const f = s[key];
  if (!f) return '–';
  const v = (n: number) => String(round(n, n >= 100 ? 0 : n >= 10 ? 1 : 2));
  return f.min === f.max ? v(f.median) : `${v(f.median)} [${v(f.min)}–${v(f.max)}]`;
}
