import Database from 'better-sqlite3';
import pg from 'pg';

/**
 * The shape of a migrated database, in terms both SQLite and PostgreSQL can be compared in:
 * tables, columns (name, type family, nullability, default, generated), primary keys, indexes
 * (name, columns in order, uniqueness) and foreign keys. Prisma's own bookkeeping table is left
 * out (its DDL differs by provider on purpose).
 */
export interface Column {
  name: string;
  type: 'text' | 'integer' | 'float' | 'decimal' | 'boolean' | 'timestamp' | 'bytes' | 'json' | `other:${string}`;
  nullable: boolean;
  default: string | null;
  /** autoincrement() / SERIAL */
  generated: boolean;
}
export interface Index {
  name: string;
  columns: string[];
  unique: boolean;
}
export interface ForeignKey {
  columns: string[];
  references: string;
  referencedColumns: string[];
}
export interface Table {
  name: string;
  columns: Column[];
  primaryKey: string[];
  indexes: Index[];
  foreignKeys: ForeignKey[];
}
export type Shape = Table[];

const IGNORED = new Set(['_prisma_migrations', 'sqlite_sequence']);

/** SQLite's declared types → a family (SQLite's own affinity rules, narrowed to Prisma's types). */
function sqliteType(declared: string): Column['type'] {
  const t = declared.toUpperCase();
  if (t === 'DATETIME') return 'timestamp';
  if (t === 'BOOLEAN') return 'boolean';
  if (t === 'JSONB' || t === 'JSON') return 'json';
  if (t.startsWith('DECIMAL')) return 'decimal';
  if (t.includes('INT')) return 'integer';
  if (t.includes('CHAR') || t.includes('TEXT') || t.includes('CLOB')) return 'text';
  if (t.includes('REAL') || t.includes('FLOA') || t.includes('DOUB')) return 'float';
  if (t === 'BLOB') return 'bytes';
  return `other:${t}`;
}

function pgType(dataType: string): Column['type'] {
  switch (dataType) {
    case 'text':
    case 'character varying':
    case 'character':
      return 'text';
    case 'integer':
    case 'bigint':
    case 'smallint':
      return 'integer';
    case 'double precision':
    case 'real':
      return 'float';
    case 'numeric':
      return 'decimal';
    case 'boolean':
      return 'boolean';
    case 'timestamp without time zone':
    case 'timestamp with time zone':
      return 'timestamp';
    case 'bytea':
      return 'bytes';
    case 'jsonb':
    case 'json':
      return 'json';
    default:
      return `other:${dataType}`;
  }
}

/** `'USD'::text` → `'USD'`; `CURRENT_TIMESTAMP` and `now()` alike; numbers as they are. */
function normaliseDefault(d: string | null): string | null {
  if (d === null) return null;
  let v = d.trim();
  while (/^\(.*\)$/.test(v)) v = v.slice(1, -1).trim();
  v = v.replace(/::[a-z ]+(\(\d+\))?$/i, '');
  if (/^(current_timestamp|now\(\))$/i.test(v)) return 'CURRENT_TIMESTAMP';
  return v;
}

const byName = <T extends { name: string }>(a: T, b: T) => a.name.localeCompare(b.name);

export function sqliteShape(file: string): Shape {
  const db = new Database(file, { readonly: true });
  try {
    const tables = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string; sql: string }[];
    return tables
      .filter((t) => !IGNORED.has(t.name))
      .map((t): Table => {
        const info = db.prepare(`PRAGMA table_info("${t.name}")`).all() as { name: string; type: string; notnull: number; dflt_value: string | null; pk: number }[];
        const autoincrement = /AUTOINCREMENT/i.test(t.sql);
        const primaryKey = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
        const columns = info
          .map((c): Column => ({
            name: c.name,
            type: sqliteType(c.type),
            // A PRIMARY KEY column is NOT NULL in Prisma's SQLite DDL; say so either way.
            nullable: c.notnull === 0 && c.pk === 0,
            default: normaliseDefault(c.dflt_value),
            generated: autoincrement && c.pk > 0,
          }))
          .sort(byName);
        const indexes = (db.prepare(`PRAGMA index_list("${t.name}")`).all() as { name: string; unique: number; origin: string }[])
          .filter((i) => i.origin !== 'pk')
          .map((i): Index => ({
            name: i.name,
            unique: i.unique === 1,
            columns: (db.prepare(`PRAGMA index_info("${i.name}")`).all() as { seqno: number; name: string }[]).sort((a, b) => a.seqno - b.seqno).map((c) => c.name),
          }))
          .sort(byName);
        const fks = db.prepare(`PRAGMA foreign_key_list("${t.name}")`).all() as { id: number; seq: number; table: string; from: string; to: string }[];
        const foreignKeys = [...new Set(fks.map((f) => f.id))].map((id) => {
          const parts = fks.filter((f) => f.id === id).sort((a, b) => a.seq - b.seq);
          return { columns: parts.map((p) => p.from), references: parts[0]!.table, referencedColumns: parts.map((p) => p.to) };
        });
        return { name: t.name, columns, primaryKey, indexes, foreignKeys };
      });
  } finally {
    db.close();
  }
}

export async function postgresShape(databaseUrl: string): Promise<Shape> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const q = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => (await client.query<T>(sql, params)).rows;
    const tables = await q<{ name: string }>(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
    );
    const shape: Shape = [];
    for (const { name } of tables) {
      if (IGNORED.has(name)) continue;
      const cols = await q<{ name: string; data_type: string; is_nullable: string; column_default: string | null; is_identity: string }>(
        `SELECT column_name AS name, data_type, is_nullable, column_default, is_identity FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = $1`,
        [name],
      );
      const columns = cols
        .map((c): Column => {
          const generated = c.is_identity === 'YES' || /^nextval\(/.test(c.column_default ?? '');
          return { name: c.name, type: pgType(c.data_type), nullable: c.is_nullable === 'YES', default: generated ? null : normaliseDefault(c.column_default), generated };
        })
        .sort(byName);
      const idx = await q<{ name: string; unique: boolean; primary: boolean; columns: string[] }>(
        `SELECT i.relname AS name, x.indisunique AS unique, x.indisprimary AS primary,
                array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n)
                        JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS columns
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
          WHERE t.relname = $1 AND t.relnamespace = current_schema()::regnamespace`,
        [name],
      );
      const fkRows = await q<{ columns: string[]; references: string; referenced: string[] }>(
        `SELECT array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS columns,
                r.relname AS references,
                array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS referenced
           FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid
          WHERE c.contype = 'f' AND t.relname = $1 AND t.relnamespace = current_schema()::regnamespace`,
        [name],
      );
      shape.push({
        name,
        columns,
        primaryKey: idx.find((i) => i.primary)?.columns ?? [],
        indexes: idx
          .filter((i) => !i.primary)
          .map((i) => ({ name: i.name, columns: i.columns, unique: i.unique }))
          .sort(byName),
        foreignKeys: fkRows.map((f) => ({ columns: f.columns, references: f.references, referencedColumns: f.referenced })),
      });
    }
    return shape;
  } finally {
    await client.end();
  }
}

/** Every difference between two shapes, one readable line each; [] when they agree. */
export function compareShapes(a: Shape, b: Shape, names: [string, string] = ['sqlite', 'postgresql']): string[] {
  const [an, bn] = names;
  const diffs: string[] = [];
  const at = new Map(a.map((t) => [t.name, t]));
  const bt = new Map(b.map((t) => [t.name, t]));
  for (const name of new Set([...at.keys(), ...bt.keys()])) {
    const x = at.get(name);
    const y = bt.get(name);
    if (!x || !y) {
      diffs.push(`table ${name}: only in ${x ? an : bn}`);
      continue;
    }
    const xc = new Map(x.columns.map((c) => [c.name, c]));
    const yc = new Map(y.columns.map((c) => [c.name, c]));
    for (const col of new Set([...xc.keys(), ...yc.keys()])) {
      const c = xc.get(col);
      const d = yc.get(col);
      if (!c || !d) {
        diffs.push(`column ${name}.${col}: only in ${c ? an : bn}`);
        continue;
      }
      for (const k of ['type', 'nullable', 'default', 'generated'] as const) {
        if (c[k] !== d[k]) diffs.push(`column ${name}.${col}: ${k} ${JSON.stringify(c[k])} in ${an}, ${JSON.stringify(d[k])} in ${bn}`);
      }
    }
    if (x.primaryKey.join(',') !== y.primaryKey.join(',')) diffs.push(`table ${name}: primary key (${x.primaryKey}) in ${an}, (${y.primaryKey}) in ${bn}`);
    const xi = new Map(x.indexes.map((i) => [i.name, i]));
    const yi = new Map(y.indexes.map((i) => [i.name, i]));
    for (const idx of new Set([...xi.keys(), ...yi.keys()])) {
      const i = xi.get(idx);
      const j = yi.get(idx);
      if (!i || !j) diffs.push(`index ${idx} on ${name}: only in ${i ? an : bn}`);
      else if (i.unique !== j.unique || i.columns.join(',') !== j.columns.join(','))
        diffs.push(`index ${idx} on ${name}: ${i.unique ? 'unique ' : ''}(${i.columns}) in ${an}, ${j.unique ? 'unique ' : ''}(${j.columns}) in ${bn}`);
    }
    const fk = (f: ForeignKey) => `(${f.columns}) → ${f.references}(${f.referencedColumns})`;
    const xf = new Set(x.foreignKeys.map(fk));
    const yf = new Set(y.foreignKeys.map(fk));
    for (const f of xf) if (!yf.has(f)) diffs.push(`foreign key ${name}${f}: only in ${an}`);
    for (const f of yf) if (!xf.has(f)) diffs.push(`foreign key ${name}${f}: only in ${bn}`);
  }
  return diffs;
}

/** The `model` and `enum` blocks of a schema.prisma, whitespace-normalised, by name. */
export function modelBlocks(schema: string): Map<string, string> {
  const blocks = new Map<string, string>();
  const re = /^(model|enum|view|type)\s+(\w+)\s*\{[\s\S]*?^\}/gm;
  for (const m of schema.matchAll(re)) {
    const text = m[0]
      .split('\n')
      .map((l) => l.replace(/\s+/g, ' ').trim())
      .filter(Boolean)
      .join('\n');
    blocks.set(`${m[1]} ${m[2]}`, text);
  }
  return blocks;
}

export function compareModels(a: string, b: string, names: [string, string] = ['prisma/schema.prisma', 'prisma/postgresql/schema.prisma']): string[] {
  const x = modelBlocks(a);
  const y = modelBlocks(b);
  const diffs: string[] = [];
  for (const k of new Set([...x.keys(), ...y.keys()])) {
    if (!x.has(k) || !y.has(k)) diffs.push(`${k}: only in ${x.has(k) ? names[0] : names[1]}`);
    else if (x.get(k) !== y.get(k)) {
      const xl = x.get(k)!.split('\n');
      const yl = y.get(k)!.split('\n');
      const first = xl.findIndex((l, i) => l !== yl[i]);
      diffs.push(`${k}: differs at "${xl[first] ?? '(end)'}" in ${names[0]} vs "${yl[first] ?? '(end)'}" in ${names[1]}`);
    }
  }
  return diffs;
}
