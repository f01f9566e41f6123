import type { Compilable, CompiledQuery, RootOperationNode } from 'kysely';

/** What a statement's arguments may be: values, lists of values, or lists of flat rows (a multi-row INSERT). */
type Value = string | number | boolean | null;
export type Args = Record<string, Value | readonly Value[] | readonly Record<string, Value>[]>;

/** Where a parameter of a compiled shape comes from: a fixed value, or a place in each call's arguments. */
type Source = { fixed: unknown } | { key: string; index?: number; field?: string };

interface Shape {
  query: RootOperationNode;
  queryId: CompiledQuery['queryId'];
  sql: string;
  sources: Source[];
}

/** Stands in for one argument while a shape is compiled; found again among the compiled parameters. */
class Slot {
  constructor(
    readonly key: string,
    readonly index?: number,
    readonly field?: string,
  ) {}
}

const isRow = (v: unknown): v is Record<string, Value> => typeof v === 'object' && v !== null;

/** The arguments with every value replaced by its slot: typed as the arguments, so the builder checks as if given them. */
function slots<A extends Args>(args: A): A {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(args)) {
    out[key] = Array.isArray(v)
      ? v.map((el: unknown, index) =>
          isRow(el) ? Object.fromEntries(Object.keys(el).map((field) => [field, new Slot(key, index, field)])) : new Slot(key, index),
        )
      : new Slot(key);
  }
  return out as A;
}

/** A statement's shape: its name, and the length of each list (an IN list, a multi-row INSERT) in its arguments. */
function shapeKey(name: string, args: Args): string {
  let key = name;
  for (const k in args) {
    const v = args[k];
    if (Array.isArray(v)) key += `|${k}:${v.length}`;
  }
  return key;
}

/**
 * Statements compiled once per shape. Kysely builds and compiles a statement in 30-85 µs, several
 * times what running it prepared costs, and on SQLite that time was spent holding the one write
 * lock. So the builder runs once per shape, with slots where the values go; every later call only
 * puts its values in the slots' places. kysely-params does the same, but pins kysely 0.24 (a second
 * copy whose builder types do not match ours) and knows no list shapes.
 *
 * A shape is `name` plus the length of every list in `args`: whatever else changes the SQL (which
 * columns an UPDATE sets, an optional condition) must be in `name`. `build` may only put `p`'s
 * values where values go (never branch on them, never format them): its other values are fixed in
 * the shape.
 */
export class Shapes {
  private readonly cache = new Map<string, Shape>();

  bind<A extends Args, R>(name: string, args: A, build: (p: A) => Compilable<R>): CompiledQuery<R> {
    const key = shapeKey(name, args);
    let shape = this.cache.get(key);
    if (!shape) {
      // Bounded like the prepared-statement cache: IN lists make a shape per length.
      if (this.cache.size >= 1000) this.cache.clear();
      shape = compile(build(slots(args)));
      this.cache.set(key, shape);
    }
    const parameters = new Array<unknown>(shape.sources.length);
    for (let i = 0; i < parameters.length; i++) {
      const s = shape.sources[i]!;
      if ('fixed' in s) parameters[i] = s.fixed;
      else {
        const v = args[s.key] as unknown;
        parameters[i] = s.index === undefined ? v : s.field === undefined ? (v as Value[])[s.index] : (v as Record<string, Value>[])[s.index]![s.field];
      }
    }
    return { query: shape.query, queryId: shape.queryId, sql: shape.sql, parameters };
  }
}

function compile(q: Compilable<unknown>): Shape {
  const c = q.compile();
  const sources = c.parameters.map(
    (p): Source =>
      p instanceof Slot ? { key: p.key, ...(p.index !== undefined ? { index: p.index } : {}), ...(p.field ? { field: p.field } : {}) } : { fixed: p },
  );
  return { query: c.query, queryId: c.queryId, sql: c.sql, sources };
}
