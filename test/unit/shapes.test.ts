import { describe, expect, it } from 'vitest';
import { compiler } from '../../src/storage/schema.js';
import { Shapes } from '../../src/storage/shapes.js';

// A statement compiled once per shape must give, for every later call, exactly what building and
// compiling it afresh with that call's values gives.
describe.each(['sqlite', 'postgresql'] as const)('statements compiled once per shape (%s)', (dialect) => {
  const db = compiler(dialect);

  it('binds each call’s values, scalars, lists and rows, into the SQL of the first', () => {
    const shapes = new Shapes();
    const build = (p: { ids: readonly string[]; at: string; rows: readonly { id: string; n: number | null }[]; limit: number }) =>
      db
        .updateTable('outbox')
        .set((eb) => ({ published_at: p.at, last_error: 'fixed', attempts: eb('attempts', '+', 1) }))
        .where('id', 'in', p.ids)
        .where('id', 'in', (eb) =>
          eb
            .selectFrom('outbox')
            .select('id')
            .where(
              'subject',
              'in',
              p.rows.map((r) => r.id),
            )
            .limit(p.limit),
        );
    const calls = [
      { ids: ['a', 'b'], at: 't1', rows: [{ id: 'r1', n: 1 }], limit: 5 },
      { ids: ['c', 'd'], at: 't2', rows: [{ id: 'r2', n: null }], limit: 7 },
      { ids: ['e'], at: 't3', rows: [{ id: 'r3', n: 3 }], limit: 9 },
      { ids: ['f', 'g'], at: 't4', rows: [{ id: 'r4', n: 4 }], limit: 1 },
    ];
    for (const args of calls) {
      const bound = shapes.bind('mark', args, build);
      const fresh = build(args).compile();
      expect({ sql: bound.sql, parameters: bound.parameters }).toEqual({ sql: fresh.sql, parameters: fresh.parameters });
    }
  });

  it('binds the rows of a multi-row INSERT, a shape per row count', () => {
    const shapes = new Shapes();
    const build = (p: { rows: readonly { id: string; payload: string }[]; at: string }) =>
      db.insertInto('outbox').values(p.rows.map((r) => ({ id: r.id, subject: 's', payload: r.payload, headers: '{}', created_at: p.at, attempts: 0 })));
    for (const rows of [
      [{ id: '1', payload: 'a' }],
      [{ id: '2', payload: 'b' }],
      [
        { id: '3', payload: 'c' },
        { id: '4', payload: 'd' },
      ],
    ]) {
      const args = { rows, at: `at-${rows[0]!.id}` };
      const bound = shapes.bind('insert', args, build);
      const fresh = build(args).compile();
      expect({ sql: bound.sql, parameters: bound.parameters }).toEqual({ sql: fresh.sql, parameters: fresh.parameters });
    }
  });
});
