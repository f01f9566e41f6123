/**
 * Issue 12's speed targets, judged per run (a target met in the median but missed in a run is
 * reported as missed in that run): every verdict is PASS or MISS from that run's own figures, or
 * "not measured" (with why) when the run has no such figure. Printed, never asserted by a test.
 */
export interface Verdict {
  /** The figure judged; null when the run did not measure it. */
  value: number | null;
  /** null: not measured. */
  pass: boolean | null;
}

interface Target {
  key: string;
  label: string;
  /** Where the figure is in a run's result (dotted, with `pipeline@<rate>` for a step). */
  path: string;
  at: 'most' | 'least';
  limit: number;
}

const BACKENDS = [
  { name: 'sqlite', label: 'SQLite', prefix: '' },
  { name: 'postgresql', label: 'PostgreSQL', prefix: 'postgresql.' },
] as const;

const TARGETS: Target[] = BACKENDS.flatMap(({ name, label, prefix }) => [
  {
    key: `${name}.post_p50_at_300`,
    label: `${label}: POST /orders p50 at 300/s offered (open loop)`,
    path: `${prefix}pipeline@300.http.p50_ms`,
    at: 'most',
    limit: 3,
  },
  { key: `${name}.post_p99_at_300`, label: `${label}: POST /orders p99 at 300/s offered`, path: `${prefix}pipeline@300.http.p99_ms`, at: 'most', limit: 10 },
  {
    key: `${name}.post_p99_at_1000`,
    label: `${label}: POST /orders p99 at 1,000/s offered`,
    path: `${prefix}pipeline@1000.http.p99_ms`,
    at: 'most',
    limit: 30,
  },
  {
    key: `${name}.intake_ratio`,
    label: `${label}: 50-connection intake ÷ same run's minimal-intake ceiling`,
    path: `${prefix}intake.ratio_to_minimal_intake`,
    at: 'least',
    limit: 0.25,
  },
  name === 'sqlite'
    ? {
        key: 'sqlite.pipeline_sustained',
        label: 'SQLite: pipeline sustained, every stage keeping up (orders/s)',
        path: 'max_sustained_per_s',
        at: 'least',
        limit: 1500,
      }
    : {
        key: 'postgresql.pipeline_sustained',
        label: 'PostgreSQL: shipped, every stage keeping up (orders/s)',
        path: 'postgresql.max_sustained_per_s',
        at: 'least',
        limit: 1000,
      },
]);

/** A figure by dotted path; `pipeline@300` picks the step offered 300/s. */
function figure(run: unknown, path: string): number | null {
  let v: unknown = run;
  for (const part of path.split('.')) {
    const [key, rate] = part.split('@');
    v = (v as Record<string, unknown> | undefined)?.[key!];
    if (rate !== undefined) v = Array.isArray(v) ? v.find((s: { offered_per_s?: number }) => s.offered_per_s === Number(rate)) : undefined;
  }
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function judge(run: unknown): Record<string, Verdict> {
  return Object.fromEntries(
    TARGETS.map((t) => {
      const value = figure(run, t.path);
      return [t.key, { value, pass: value === null ? null : t.at === 'most' ? value <= t.limit : value >= t.limit }];
    }),
  );
}

/** Why a target has no figure in a run: the backend was skipped, or the step was not offered/reached. */
function missing(run: Record<string, unknown>, t: Target): string {
  const skipped = t.path.startsWith('postgresql.') ? (run.postgresql as { skipped?: string } | undefined)?.skipped : undefined;
  if (skipped) return 'not measured (backend skipped)';
  const rate = /@(\d+)/.exec(t.path)?.[1];
  return rate ? `not measured (${rate}/s not offered or not reached)` : 'not measured';
}

/** One line per target: its limit, then each run's verdict and figure. */
export function targetsTable(runs: Record<string, unknown>[]): string {
  const rows = [['target (issue 12), judged per run', 'limit', ...runs.map((_, i) => `run ${i + 1}`)]];
  for (const t of TARGETS) {
    rows.push([
      t.label,
      `${t.at === 'most' ? '≤' : '≥'} ${t.limit}`,
      ...runs.map((run) => {
        const v = (run.targets as Record<string, Verdict> | undefined)?.[t.key] ?? judge(run)[t.key]!;
        return v.pass === null ? missing(run, t) : `${v.pass ? 'PASS' : 'MISS'} ${v.value}`;
      }),
    ]);
  }
  const skips = runs.map((r, i) => [i, (r.postgresql as { skipped?: string } | undefined)?.skipped] as const).filter(([, s]) => s);
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const body = rows
    .map((row, j) => `| ${row.map((cell, i) => cell.padEnd(w[i]!)).join(' | ')} |${j === 0 ? `\n|${w.map((n) => '-'.repeat(n + 2)).join('|')}|` : ''}`)
    .join('\n');
  return `${body}\n${skips.map(([i, s]) => `run ${i + 1}: PostgreSQL ${s}\n`).join('')}`;
}
