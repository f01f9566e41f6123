import type { JetStreamManager, StreamInfo } from 'nats';
import { loadConfig } from '../../config/env.js';
import { ORDER_SUBJECTS_ALL, parseEvent } from '../../events/contracts.js';
import { isJsError, JsErrCode, jsErrCode } from '../../nats/errors.js';
import { followStream, readStream } from '../../nats/stream-reader.js';
import { subjectMatches } from '../../nats/subjects.js';
import { ACTIVITY_CONSUMER, ORDERS_STREAM, streamConfigs } from '../../nats/topology.js';
import { recordActivity, summarize } from '../../orders/activity.js';
import { applyEvent, diffProjection, type ProjectedOrder } from '../../orders/projection.js';
import { openStorage, storageOptions } from '../../storage/open.js';
import { CliError } from '../errors.js';
import { openExistingStorage, requireExistingDb } from '../existing-db.js';
import { withNats } from '../nats-session.js';

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

const pad = (s: unknown, n: number) => String(s).padEnd(n);
const padL = (s: unknown, n: number) => String(s).padStart(n);

/**
 * `orderflow nats streams`: what `nats stream ls` / `nats stream info` would print, with where
 * each stream lives on a cluster (its leader and every replica: current or not, how many
 * operations behind, when last heard from) and each consumer's pending and ack pending.
 */
export const natsStreams = (opts: { json: boolean }) =>
  withNats('nats streams', async (nc) => {
    const jsm = await nc.jetstreamManager();
    const { infos, unanswered } = await streamInfos(jsm);
    const consumers = new Map(await Promise.all(infos.map(async (i) => [i.config.name, await jsm.consumers.list(i.config.name).next()] as const)));
    if (opts.json)
      return out(
        JSON.stringify([
          ...infos.map((i) => ({
            config: i.config,
            state: i.state,
            cluster: i.cluster ?? null,
            consumers: (consumers.get(i.config.name) ?? []).map((c) => ({
              name: c.name,
              num_pending: c.num_pending,
              num_ack_pending: c.num_ack_pending,
              num_redelivered: c.num_redelivered,
              cluster: c.cluster ?? null,
            })),
          })),
          ...unanswered.map((name) => ({ config: { name }, error: NO_ANSWER })),
        ]),
      );
    out(
      `${pad('Stream', 10)} ${pad('Subjects', 12)} ${padL('Replicas', 8)} ${pad('Leader', 10)} ${padL('Messages', 9)} ${padL('Bytes', 10)} ${padL('First', 7)} ${padL('Last', 7)} ${padL('Consumers', 9)}  Retention  Max age  Last message`,
    );
    for (const i of infos) {
      const age = i.config.max_age ? `${Math.round(i.config.max_age / 1e9 / 86400)}d` : '∞';
      out(
        `${pad(i.config.name, 10)} ${pad((i.config.subjects ?? []).join(','), 12)} ${padL(`R${i.config.num_replicas || 1}`, 8)} ${pad(i.cluster?.leader ?? '-', 10)} ${padL(i.state.messages, 9)} ${padL(i.state.bytes, 10)} ${padL(i.state.first_seq, 7)} ${padL(i.state.last_seq, 7)} ${padL(i.state.consumer_count, 9)}  ${pad(i.config.retention, 9)}  ${pad(age, 7)}  ${i.state.last_ts}`,
      );
      for (const r of i.cluster?.replicas ?? [])
        out(
          `  replica  ${pad(r.name, 10)} ${pad(r.offline ? 'offline' : r.current ? 'current' : 'behind', 8)} lag ${padL(r.lag ?? 0, 6)}  active ${seconds(r.active)} ago`,
        );
      for (const c of consumers.get(i.config.name) ?? [])
        out(
          `  consumer ${pad(c.name, 26)} pending ${padL(c.num_pending, 6)}  ack pending ${padL(c.num_ack_pending, 5)}  redelivered ${padL(c.num_redelivered, 4)}  leader ${c.cluster?.leader ?? '-'}`,
        );
    }
    for (const name of unanswered) out(`${pad(name, 10)} ${NO_ANSWER}`);
  });

const NO_ANSWER = 'no answer from its leader (a new one being elected, or a node down?); run the command again in a few seconds';

/**
 * Every stream's info. On a cluster the server's list leaves out (as `missing`, which nats.js
 * drops) each stream whose leader did not answer in time, e.g. while it is being elected, so the
 * names come from the meta leader's assignments and a stream the list left out is asked for on
 * its own, three times a second apart; what still does not answer is named, never silently left out.
 */
async function streamInfos(jsm: JetStreamManager): Promise<{ infos: StreamInfo[]; unanswered: string[] }> {
  const names = new Set(await jsm.streams.names().next());
  const byName = new Map((await jsm.streams.list().next()).map((i) => [i.config.name, i]));
  for (const name of names) {
    for (let attempt = 0; attempt < 3 && !byName.has(name); attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 1000));
      try {
        byName.set(name, await jsm.streams.info(name));
      } catch (err) {
        // Deleted since it was named: not a stream any more. Any other API error is an answer, and
        // says something (a permission): not a leader being elected.
        if (isJsError(err, JsErrCode.StreamNotFound)) {
          names.delete(name);
          break;
        }
        if (jsErrCode(err) !== undefined) throw err;
      }
    }
  }
  return { infos: [...names].flatMap((n) => byName.get(n) ?? []), unanswered: [...names].filter((n) => !byName.has(n)) };
}

/** Nanoseconds as seconds, e.g. `0.21 s`. */
const seconds = (ns: number | undefined) => `${((ns ?? 0) / 1e9).toFixed(2)} s`;

/** `orderflow nats consumers [stream]`: what `nats consumer ls` / `nats consumer info` would print. */
export const natsConsumers = (stream: string | undefined, opts: { json: boolean }) =>
  withNats('nats consumers', async (nc) => {
    const jsm = await nc.jetstreamManager();
    const names = await jsm.streams.names().next();
    if (stream && !names.includes(stream))
      throw new CliError(`no stream named ${stream}; the streams are ${names.join(', ') || 'none yet (run `orderflow setup`)'}`);
    const streams = stream ? [stream] : names;
    const all = [];
    for (const s of streams) all.push(...(await jsm.consumers.list(s).next()));
    if (opts.json) return out(JSON.stringify(all));
    out(
      `${pad('Stream', 8)} ${pad('Consumer', 18)} ${pad('Filter', 20)} ${padL('Pending', 8)} ${padL('Ack pending', 11)} ${padL('Redelivered', 11)} ${padL('Waiting', 7)} ${padL('Delivered', 9)} ${padL('Ack floor', 9)}`,
    );
    for (const c of all) {
      out(
        `${pad(c.stream_name, 8)} ${pad(c.name, 18)} ${pad(c.config.filter_subject ?? (c.config.filter_subjects ?? []).join(','), 20)} ${padL(c.num_pending, 8)} ${padL(c.num_ack_pending, 11)} ${padL(c.num_redelivered, 11)} ${padL(c.num_waiting, 7)} ${padL(c.delivered.stream_seq, 9)} ${padL(c.ack_floor.stream_seq, 9)}`,
      );
    }
  });

/** `orderflow events tail [subject]`: order events as they are stored, until Ctrl-C (or --count). */
export const eventsTail = (subject: string, opts: { all: boolean; count?: number; json: boolean }) =>
  withNats('events tail', async (nc) => {
    const stopped = new AbortController();
    const stop = () => stopped.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    if (!opts.json) process.stderr.write(`tailing ${subject} on ${ORDERS_STREAM}${opts.all ? ' from the start' : ''} (Ctrl-C stops)\n`);
    let n = 0;
    // followStream starts over after the last event shown when its consumer dies with a node.
    for await (const m of followStream(nc.jetstream(), await nc.jetstreamManager(), {
      stream: ORDERS_STREAM,
      subject,
      all: opts.all,
      signal: stopped.signal,
    })) {
      const p = parseEvent(m.subject, m.data);
      if (opts.json) out(p.ok ? JSON.stringify(p.event) : JSON.stringify({ subject: m.subject, seq: m.seq, error: p.error }));
      else
        out(
          p.ok
            ? `${p.event.occurred_at}  #${m.seq}  ${pad(m.subject, 16)} ${summarize(p.event)}  (corr ${p.event.correlation_id})`
            : `#${m.seq}  ${m.subject}  unparseable: ${p.error}`,
        );
      if (opts.count && ++n >= opts.count) break;
    }
  });

/**
 * `orderflow events replay`: re-drives stored events of a time range, either as copies on
 * `<to-subject>.<original subject>` (core NATS, for a consumer of your own) or straight into a
 * consumer of ours (`activity`, idempotent: events it already recorded are skipped).
 */
export const eventsReplay = (opts: { from?: Date; to?: Date; subject: string; toSubject?: string; consumer?: 'activity'; dryRun: boolean }) => {
  if (opts.toSubject) refuseOwnSubjects(opts.toSubject);
  const config = loadConfig();
  if (opts.consumer) requireExistingDb('events replay', config.DATABASE_URL);
  return withNats('events replay', async (nc) => {
    const storage = opts.consumer ? await openStorage(config.DATABASE_URL, storageOptions(config, 'events replay')) : undefined;
    const counts = { read: 0, replayed: 0, already_recorded: 0, unparseable: 0 };
    const consumer = ACTIVITY_CONSUMER.config.durable_name;
    try {
      for await (const m of readStream(nc.jetstream(), await nc.jetstreamManager(), {
        stream: ORDERS_STREAM,
        subject: opts.subject,
        from: opts.from,
        to: opts.to,
      })) {
        counts.read++;
        if (opts.toSubject) {
          if (!opts.dryRun) nc.publish(`${opts.toSubject}.${m.subject}`, m.data, { headers: m.headers });
          counts.replayed++;
          continue;
        }
        const p = parseEvent(m.subject, m.data);
        if (!p.ok) {
          counts.unparseable++;
          continue;
        }
        // A dry run asks the same question the recorder's ON CONFLICT DO NOTHING would answer, without writing.
        const fresh = opts.dryRun
          ? !(await storage!.isActivityRecorded(consumer, p.event.event_id))
          : await recordActivity(storage!, consumer, m.subject, p.event);
        if (fresh) counts.replayed++;
        else counts.already_recorded++;
      }
      await nc.flush();
    } finally {
      await storage?.close();
    }
    // In a dry run, "replayed" counts what a real run would replay.
    const { replayed, ...rest } = counts;
    out(
      JSON.stringify({
        ...rest,
        [opts.dryRun ? 'would_replay' : 'replayed']: replayed,
        target: opts.toSubject ? `${opts.toSubject}.<subject>` : `consumer ${opts.consumer}`,
        dry_run: opts.dryRun,
      }),
    );
  });
};

/**
 * Copies published inside one of orderflow's streams would be stored (and consumed) as if they
 * were new orders, jobs or dead letters: refuse a prefix whose copies land there.
 */
function refuseOwnSubjects(prefix: string): void {
  const sample = `${prefix}.orders.created`;
  const own = streamConfigs({ ordersMaxAgeDays: 1 }).find((s) => (s.subjects ?? []).some((f) => subjectMatches(f, sample)));
  if (own)
    throw new CliError(
      `--to-subject ${prefix}: the copies (${sample}, …) would be stored in orderflow's ${own.name} stream; choose a prefix outside ${(own.subjects ?? []).join(', ')}, like replay`,
      2,
    );
}

/** `orderflow projections rebuild`: the order read model from the ORDERS stream alone, compared with the database. */
export const projectionsRebuild = (opts: { json: boolean }) =>
  withNats('projections rebuild', async (nc) => {
    const projected = new Map<string, ProjectedOrder>();
    let events = 0;
    for await (const m of readStream(nc.jetstream(), await nc.jetstreamManager(), { stream: ORDERS_STREAM, subject: ORDER_SUBJECTS_ALL })) {
      const p = parseEvent(m.subject, m.data);
      if (!p.ok) continue;
      events++;
      applyEvent(projected, p.event);
    }
    const storage = await openExistingStorage('projections rebuild', loadConfig().DATABASE_URL);
    const rows = await storage.orderStatuses().finally(() => storage.close());
    const diff = diffProjection(projected, rows);
    if (opts.json) return out(JSON.stringify({ events, ...diff }));
    out(`rebuilt ${diff.inStream} orders from ${events} events; the database has ${diff.inDatabase}`);
    out(`matching: ${diff.matching}`);
    out(
      `in the database but not in the stream: ${diff.missingFromStream.length}${diff.missingFromStream.length ? ` (${diff.missingFromStream.slice(0, 5).join(', ')}…)` : ''}`,
    );
    out(`in the stream but not in the database: ${diff.missingFromDatabase.length}`);
    out(`status differs: ${diff.statusMismatch.length}`);
    for (const d of diff.statusMismatch.slice(0, 20)) out(`  ${d.id}: stream says ${d.stream}, database says ${d.database}`);
    if (diff.missingFromDatabase.length || diff.statusMismatch.length) process.exitCode = 1;
  });
