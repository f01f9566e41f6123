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

/** The summary as a table: every figure of every run, median [min–max]. */
export function table(s: Summary, runs: number): string {
  const f = (key: string, unit = '') => `${show(s, key)}${unit}`;
  const lat = (key: string) => `p50 ${f(`${key}.p50_ms`)}, p99 ${f(`${key}.p99_ms`)}, max ${f(`${key}.max_ms`)} ms`;
  /** One pipeline's steps; `p` is '' for the single node and 'cluster.' for the three-node R3 cluster. */
  const steps = (p: string, label: string) => {
    const rates = [...new Set(Object.keys(s).filter((k) => k.startsWith(`${p}pipeline@`)).map((k) => Number(k.slice(p.length + 9).split('.')[0])))].sort((a, b) => a - b);
    return rates.flatMap((r) => {
      const k = `${p}pipeline@${r}`;
      const at = `${label}@${r}/s`;
      return [
        [`${at} offered`, `reached in ${s[`${k}.sustained`]?.n ?? 0} of ${runs} runs, sustained in ${s[`${k}.sustained`]?.sum ?? 0}; step ${f(`${k}.step_s`)} s; finished ${f(`${k}.finished_per_s`, '/s')} during the step; drained ${f(`${k}.drained_in_s`)} s after`],
        [`${at}: lag at the end`, `slowest stage ${f(`${k}.backlog_end.oldest_ms`)} ms behind; ${f(`${k}.backlog_end.total`)} items unfinished (web ${f(`${k}.backlog_end.web_http.pending`)}, activity ${f(`${k}.backlog_end.activity.pending`)}, jobs ${f(`${k}.backlog_end.fulfillment_jobs.pending`)}, outbox ${f(`${k}.backlog_end.outbox.pending`)}, orders ${f(`${k}.backlog_end.orders.pending`)})`],
        [`${at}: POST`, `${lat(`${k}.http`)}; last third ${lat(`${k}.http.last_third`)}`],
        [`${at}: created → shipped events`, `${lat(`${k}.e2e_events_ms.whole`)}; last third ${lat(`${k}.e2e_events_ms.last_third`)}`],
        [`${at}: POST → shipped_at`, `${lat(`${k}.post_to_shipped_ms.whole`)}; last third ${lat(`${k}.post_to_shipped_ms.last_third`)}`],
        [`${at}: samples, CPU`, `${f(`${k}.samples_pct_of_accepted`, '%')} of accepted orders sampled; ${f(`${k}.cpu_ms_per_order`)} CPU ms/order until drained (web ${f(`${k}.cpu_ms_per_order_by_process.web`)}, nats-server ${f(`${k}.cpu_ms_per_order_by_process.nats-server`)})`],
      ];
    });
  };
  const rss = (p: string) => ['web', 'payments', 'activity', 'fulfillment', 'reconciler', 'nats-server'].map((n) => `${n} ${f(`${p}peak_rss_mb.${n}`)}`).join(', ');
  const rows: string[][] = [
    ['measure', runs > 1 ? `median [min–max] of ${runs} runs` : 'figure (one run)'],
    ['NATS request/reply (ceiling)', `${f('ceilings.reqreply.ops_per_s', '/s')}, p50 ${f('ceilings.reqreply.p50_ms')} ms, p99 ${f('ceilings.reqreply.p99_ms')} ms`],
    ['JetStream publish + ack (ceiling)', `${f('ceilings.jspublish.ops_per_s', '/s')}, p50 ${f('ceilings.jspublish.p50_ms')} ms, p99 ${f('ceilings.jspublish.p99_ms')} ms`],
    ['bare Fastify POST (ceiling)', `${f('ceilings.fastify_bare_post.req_per_s', '/s')}, p99 ${f('ceilings.fastify_bare_post.p99_ms')} ms`],
    ['minimal intake, group commit (ceiling)', `${f('ceilings.minimal_intake.req_per_s', '/s')}, p50 ${f('ceilings.minimal_intake.p50_ms')} ms, p99 ${f('ceilings.minimal_intake.p99_ms')} ms`],
    ['orderflow intake, 50 conns', `${f('intake.req_per_s', '/s')}, p50 ${f('intake.p50_ms')} ms, p99 ${f('intake.p99_ms')} ms; ratio to the ceiling ${f('intake.ratio_to_minimal_intake')}`],
    ...steps('', ''),
    ['max sustained pipeline', f('max_sustained_per_s', ' orders/s')],
    ['peak RSS (MB)', rss('')],
    ['R3 cluster: NATS request/reply (ceiling)', `${f('cluster.ceilings.reqreply.ops_per_s', '/s')}, p50 ${f('cluster.ceilings.reqreply.p50_ms')} ms, p99 ${f('cluster.ceilings.reqreply.p99_ms')} ms`],
    ['R3 cluster: JetStream publish + ack (ceiling)', `${f('cluster.ceilings.jspublish.ops_per_s', '/s')}, p50 ${f('cluster.ceilings.jspublish.p50_ms')} ms, p99 ${f('cluster.ceilings.jspublish.p99_ms')} ms`],
    ...steps('cluster.', 'R3 cluster '),
    ['R3 cluster: max sustained pipeline', `${f('cluster.max_sustained_per_s', ' orders/s')}; ${f('cluster.sustained_ratio_to_single_node')} of the single node's`],
    ['R3 cluster: peak RSS (MB)', `${rss('cluster.')} (the largest node)`],
  ];
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return `${rows.map((row, j) => `| ${row.map((cell, i) => cell.padEnd(w[i]!)).join(' | ')} |${j === 0 ? `\n|${w.map((n) => '-'.repeat(n + 2)).join('|')}|` : ''}`).join('\n')}\n`;
}
