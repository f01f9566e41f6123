import { z } from 'zod';

/** The kinds of process `orderflow start` runs, in the order it starts them. */
export const PROCESS_KINDS = ['web', 'payments', 'activity', 'fulfillment', 'reconciler'] as const;
export type ProcessKind = (typeof PROCESS_KINDS)[number];
export type Scale = Record<ProcessKind, number>;

/** More copies than this on one machine is a typo, not a plan (each is a Node process of ~120–250 MB). */
export const MAX_COPIES = 16;

const kind = z.enum(PROCESS_KINDS, { error: (i) => `unknown process kind "${String(i.input)}" (kinds: ${PROCESS_KINDS.join(', ')})` });
const copies = z
  .string()
  .regex(/^\d+$/, 'the number of copies must be a whole number, like payments=2')
  .transform(Number)
  .pipe(z.number().min(1, 'at least 1 copy of each kind runs (to run none, `stop <name>` it once started)').max(MAX_COPIES, `at most ${MAX_COPIES} copies of a kind on one machine`));

/**
 * `--scale web=2,payments=3`: how many copies of each kind `orderflow start` runs; a kind left out
 * runs once. Parsed by zod like every other input, so a bad value is one line naming it.
 */
export const scaleArg = z
  .string()
  .trim()
  .min(1, 'give kind=count pairs, like --scale web=2,payments=2')
  // One issue per bad part, each naming it, with no zod path ("0.1: …" says nothing to a person).
  .transform((s, ctx): Scale => {
    const scale = defaultScale();
    const seen = new Set<string>();
    for (const part of s.split(',').map((p) => p.trim())) {
      const m = /^([^=\s]+)=([^=\s]*)$/.exec(part);
      if (!m) {
        ctx.addIssue({ code: 'custom', message: `"${part}" is not kind=count, like payments=2` });
        continue;
      }
      const k = kind.safeParse(m[1]);
      const n = copies.safeParse(m[2]);
      for (const r of [k, n]) if (!r.success) ctx.addIssue({ code: 'custom', message: `"${part}": ${r.error.issues[0]!.message}` });
      if (!k.success || !n.success) continue;
      if (seen.has(k.data)) ctx.addIssue({ code: 'custom', message: `"${part}": ${k.data} is given twice` });
      seen.add(k.data);
      scale[k.data] = n.data;
    }
    return scale;
  });

export const defaultScale = (): Scale => Object.fromEntries(PROCESS_KINDS.map((k) => [k, 1])) as Scale;

/**
 * The instance names: the kind itself when it runs once (what `orderflow web` calls itself when run
 * by hand), else `<kind>-1` … `<kind>-N`. Each copy logs, connects to NATS and beats under its
 * instance name; its NATS identity is its kind's, shared by every copy.
 */
export function instanceNames(kind: ProcessKind, n: number): string[] {
  return n === 1 ? [kind] : Array.from({ length: n }, (_, i) => `${kind}-${i + 1}`);
}

/** What `--instance` accepts: it appears in logs, NATS connection names and heartbeats. */
export const instanceArg = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'an instance name of letters, digits, ".", "_" and "-" (at most 63), like payments-2');
