import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEvent, OrderEvents } from '../../src/events/contracts.js';
import { ActivityRecorder, activityRow } from '../../src/orders/activity.js';
import { openStorage } from '../../src/storage/open.js';
import { migrate } from '../../src/storage/sqlite/migrate.js';

describe('ActivityRecorder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orderflow-recorder-'));
  const url = `file:${join(dir, 'a.db')}`;
  migrate(url);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const row = (orderId: string) =>
    activityRow(
      'test',
      OrderEvents.shipped.subject,
      createEvent(OrderEvents.shipped, { order_id: orderId, reference: 'R', shipped_at: new Date().toISOString() }, { correlationId: 'c' }),
    );

  it('records the rows of one window in one unit of work, and tells new rows from duplicates', async () => {
    const s = await openStorage(url);
    let units = 0;
    const counted = {
      ...s,
      run: ((work, opts) => {
        units++;
        return s.run(work, opts);
      }) as typeof s.run,
    };
    const recorder = new ActivityRecorder(counted, 20);
    const rows = Array.from({ length: 30 }, (_, i) => row(`o-${i}`));
    expect(await Promise.all(rows.map((r) => recorder.record(r)))).toEqual(rows.map(() => true));
    expect(units).toBe(1);
    expect(await recorder.record(rows[0]!)).toBe(false);
    await s.close();
  });

  it('a row that cannot be written fails only itself: the batch is tried again row by row', async () => {
    const s = await openStorage(url);
    const recorder = new ActivityRecorder(s, 20);
    // NOT NULL: the database refuses it, as it would a row it cannot take for any other reason.
    const bad = { ...row('bad'), summary: null as unknown as string };
    const good = [row('ok-1'), row('ok-2')];
    const results = await Promise.allSettled([recorder.record(good[0]!), recorder.record(bad), recorder.record(good[1]!)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    for (const g of good) expect(await s.isActivityRecorded('test', g.eventId)).toBe(true);
    expect(await s.isActivityRecorded('test', bad.eventId)).toBe(false);
    await s.close();
  });
});
