import type { NatsConnection } from 'nats';
import { listDeadLetters, purgeDeadLetters, retryDeadLetter, showDeadLetter } from '../../nats/dead-letters.js';
import { withNats as session } from '../nats-session.js';

const withNats = <T>(fn: (nc: NatsConnection) => Promise<T>) => session('dlq', fn);

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

export const dlqList = (opts: { limit: number; json: boolean }) =>
  withNats(async (nc) => {
    const r = await listDeadLetters(await nc.jetstreamManager(), opts.limit);
    if (opts.json) return out(JSON.stringify(r));
    out(`${r.total} dead letter(s)${r.total > r.items.length ? `, showing ${r.items.length}` : ''}`);
    for (const d of r.items)
      out(`#${d.seq}  ${d.at}  ${d.consumer}  ${d.subject}  deliveries=${d.deliveries}  ${d.retryable ? '' : '(not retryable) '}${d.error}`);
  });

export const dlqShow = (seq: number, opts: { json: boolean }) =>
  withNats(async (nc) => {
    const d = await showDeadLetter(await nc.jetstreamManager(), seq);
    if (!d) {
      process.stderr.write(`orderflow dlq: no dead letter #${seq}\n`);
      process.exit(1);
    }
    if (opts.json) return out(JSON.stringify(d));
    out(`#${d.seq} ${d.subject} (consumer ${d.consumer}, ${d.deliveries} deliveries, ${d.at})`);
    out(`error: ${d.error}`);
    for (const [k, vs] of Object.entries(d.headers)) out(`${k}: ${vs.join(', ')}`);
    out('');
    out(d.payload);
  });

export const dlqRetry = (seq: number | undefined, opts: { all: boolean }) =>
  withNats(async (nc) => {
    const jsm = await nc.jetstreamManager();
    const js = nc.jetstream();
    const seqs = opts.all ? (await listDeadLetters(jsm, Number.MAX_SAFE_INTEGER)).items.filter((d) => d.retryable).map((d) => d.seq) : [seq!];
    let failed = false;
    for (const s of seqs) {
      const r = await retryDeadLetter(js, jsm, s);
      out(`#${s}: ${r.replace('_', ' ')}`);
      if (r !== 'retried') failed = true;
    }
    if (seqs.length === 0) out('nothing to retry');
    if (failed && !opts.all) process.exitCode = 1;
  });

export const dlqPurge = () =>
  withNats(async (nc) => {
    out(`purged ${await purgeDeadLetters(await nc.jetstreamManager())} dead letter(s)`);
  });
