import { describe, expect, it } from 'vitest';
import { judge, targetsTable } from '../../bench/targets.js';

/** A run's result as bench/run.ts records it, with only the figures the targets read. */
const step = (rate: number, p50: number, p99: number) => ({ offered_per_s: rate, http: { p50_ms: p50, p99_ms: p99 } });
const run = {
  intake: { ratio_to_minimal_intake: 0.3 },
  pipeline: [step(100, 1, 2), step(300, 2.5, 12)],
  max_sustained_per_s: 1500,
  postgresql: { skipped: 'orderflow setup refused DATABASE_URL=postgresql://…' },
};

describe('the bench judges issue 12 targets per run', () => {
  it('passes a figure within its limit, misses one past it, and leaves unmeasured figures unjudged', () => {
    const v = judge(run);
    expect(v['sqlite.post_p50_at_300']).toEqual({ value: 2.5, pass: true });
    expect(v['sqlite.post_p99_at_300']).toEqual({ value: 12, pass: false });
    expect(v['sqlite.intake_ratio']).toEqual({ value: 0.3, pass: true });
    expect(v['sqlite.pipeline_sustained']).toEqual({ value: 1500, pass: true });
    // 1,000/s was not offered in this run: no verdict, rather than a pass or a miss.
    expect(v['sqlite.post_p99_at_1000']).toEqual({ value: null, pass: null });
    expect(v['postgresql.pipeline_sustained']).toEqual({ value: null, pass: null });
  });

  it('misses a throughput target just below its limit', () => {
    expect(judge({ ...run, max_sustained_per_s: 1000 })['sqlite.pipeline_sustained']).toEqual({ value: 1000, pass: false });
    expect(judge({ postgresql: { max_sustained_per_s: 1000 } })['postgresql.pipeline_sustained']).toEqual({ value: 1000, pass: true });
  });

  it('prints each run on its own: a target met in one run and missed in another says so', () => {
    const other = { ...run, pipeline: [step(300, 3.5, 8)] };
    const text = targetsTable([
      { ...run, targets: judge(run) },
      { ...other, targets: judge(other) },
    ]);
    const line = text.split('\n').find((l) => l.includes('p50 at 300/s'))!;
    expect(line).toMatch(/PASS 2\.5 .*\| MISS 3\.5/);
    expect(text).toContain('not measured (backend skipped)');
    expect(text).toContain('run 1: PostgreSQL orderflow setup refused');
  });
});
