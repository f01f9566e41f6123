import { loadConfig } from '../../config/env.js';
import { OrderEvents, parseEvent } from '../../events/contracts.js';
import { readStream } from '../../nats/stream-reader.js';
import { ORDERS_STREAM } from '../../nats/topology.js';
import { checkInvariants, type InvariantReport, WireTally } from '../../orders/invariants.js';
import { openExistingStorage } from '../existing-db.js';
import { withNats } from '../nats-session.js';

interface WireReport {
  /** Orders with an `orders.shipped` in the ORDERS stream. */
  shippedOnWire: number;
  /** Orders with `orders.shipped` under two event ids in the stream: shipped twice. */
  shippedTwiceOnWire: number;
  /** Shipped in the database, but no `orders.shipped` in the stream (lost, or aged out of it). */
  shippedNotOnWire: number;
  /** `orders.shipped` in the stream for an order the database does not have as shipped. */
  onWireNotShipped: number;
}

/**
 * `orderflow check`: the delivery invariants counted twice, independently: from the database
 * (checkInvariants) and from what the ORDERS stream holds (every `orders.shipped` it stored, read
 * with an ordered consumer, tallied per order). `--db-only` skips the stream. Exits 1 when a
 * count shows a broken promise, so a script can run it.
 */
export async function check(opts: { json: boolean; dbOnly: boolean }): Promise<void> {
  const storage = await openExistingStorage('check', loadConfig().DATABASE_URL);
  let db: InvariantReport;
  let shippedInDb: Set<string>;
  try {
    db = await checkInvariants(storage);
    shippedInDb = new Set((await storage.orderStatuses()).filter((o) => o.status === 'shipped').map((o) => o.id));
  } finally {
    await storage.close();
  }
  const wire = opts.dbOnly ? undefined : await wireReport(shippedInDb);
  const broken =
    db.accepted !== db.final ||
    db.shippedTwice ||
    db.duplicateActivity ||
    (wire && (wire.shippedTwiceOnWire || wire.shippedNotOnWire || wire.onWireNotShipped));
  if (broken) process.exitCode = 1;
  if (opts.json) return void process.stdout.write(`${JSON.stringify({ ...db, ...(wire ? { wire } : {}) })}\n`);
  process.stdout.write(
    `accepted=${db.accepted} final=${db.final} shipped_twice=${db.shippedTwice} duplicate_activity=${db.duplicateActivity} unpublished_outbox=${db.unpublishedOutbox} ${JSON.stringify(db.byStatus)}\n`,
  );
  if (wire)
    process.stdout.write(
      `stream: shipped_on_wire=${wire.shippedOnWire} shipped_twice_on_wire=${wire.shippedTwiceOnWire} shipped_not_on_wire=${wire.shippedNotOnWire} on_wire_not_shipped=${wire.onWireNotShipped}\n`,
    );
}

const wireReport = (shippedInDb: ReadonlySet<string>) =>
  withNats('check', async (nc): Promise<WireReport> => {
    const tally = new WireTally();
    for await (const m of readStream(nc.jetstream(), await nc.jetstreamManager(), { stream: ORDERS_STREAM, subject: OrderEvents.shipped.subject })) {
      const p = parseEvent(m.subject, m.data);
      if (p.ok) tally.add(p.event);
    }
    const onWire = tally.shippedOrders();
    return {
      shippedOnWire: onWire.size,
      shippedTwiceOnWire: tally.counts().shippedTwice,
      shippedNotOnWire: [...shippedInDb].filter((id) => !onWire.has(id)).length,
      onWireNotShipped: [...onWire].filter((id) => !shippedInDb.has(id)).length,
    };
  });
