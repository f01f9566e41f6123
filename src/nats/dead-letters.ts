import type { JetStreamClient, JetStreamManager, MsgHdrs, StoredMsg } from 'nats';
import { headers as natsHeaders } from 'nats';
import { isJsError, JsErrCode } from './errors.js';
import { publishToStream } from './publish.js';

/**
 * Dead letters: messages a consumer gave up on (after MAX_DELIVERIES failed deliveries, or at once
 * when they cannot be parsed). They are kept, browsable, in the DLQ stream on dlq.<consumer>,
 * with the original subject, headers and payload and why they failed, and can be retried with
 * `orderflow dlq retry`.
 */
export const DLQ_STREAM = 'DLQ';
export const DLQ_SUBJECTS = 'dlq.>';
export const dlqSubject = (consumer: string) => `dlq.${consumer}`;

export const DlqHeaders = {
  Subject: 'Orderflow-Dlq-Subject',
  Consumer: 'Orderflow-Dlq-Consumer',
  Stream: 'Orderflow-Dlq-Stream',
  StreamSeq: 'Orderflow-Dlq-Stream-Seq',
  Deliveries: 'Orderflow-Dlq-Deliveries',
  Error: 'Orderflow-Dlq-Error',
  At: 'Orderflow-Dlq-At',
  MsgId: 'Orderflow-Dlq-Msg-Id',
} as const;

export interface DeadLetter {
  consumer: string;
  subject: string;
  data: Uint8Array;
  headers?: MsgHdrs | undefined;
  error: string;
  deliveries: number;
  /** Where it came from, for messages that were in a stream. */
  stream?: string;
  streamSeq?: number;
}

export async function publishDeadLetter(js: JetStreamClient, dl: DeadLetter): Promise<void> {
  const h = natsHeaders();
  if (dl.headers) {
    for (const [k, vs] of dl.headers) {
      if (k === 'Nats-Msg-Id') h.set(DlqHeaders.MsgId, vs[0] ?? '');
      else for (const v of vs) h.append(k, v);
    }
  }
  h.set(DlqHeaders.Subject, dl.subject);
  h.set(DlqHeaders.Consumer, dl.consumer);
  h.set(DlqHeaders.Deliveries, String(dl.deliveries));
  // Header values must be one line.
  h.set(DlqHeaders.Error, dl.error.replace(/[\r\n]+/g, ' ').slice(0, 1000));
  h.set(DlqHeaders.At, new Date().toISOString());
  if (dl.stream) h.set(DlqHeaders.Stream, dl.stream);
  if (dl.streamSeq !== undefined) h.set(DlqHeaders.StreamSeq, String(dl.streamSeq));
  await publishToStream(js, {
    // A worker that dies between dead-lettering and terming a message dead-letters it again on
    // redelivery; the same id keeps that to one entry.
    id: dl.stream && dl.streamSeq !== undefined ? `${dl.stream}:${dl.streamSeq}:${dl.consumer}` : undefined,
    subject: dlqSubject(dl.consumer),
    payload: dl.data,
    headers: h,
  });
}

// ---- operating the dead letters (orderflow dlq …) ----------------------------------------------

export interface DeadLetterSummary {
  seq: number;
  consumer: string;
  subject: string;
  error: string;
  deliveries: number;
  at: string;
  bytes: number;
  retryable: boolean;
}

export interface DeadLetterDetail extends DeadLetterSummary {
  headers: Record<string, string[]>;
  payload: string;
}

function describe(m: StoredMsg): DeadLetterDetail {
  const h = m.header;
  const headers: Record<string, string[]> = {};
  for (const [k, vs] of h) headers[k] = vs;
  return {
    seq: m.seq,
    consumer: h.get(DlqHeaders.Consumer),
    subject: h.get(DlqHeaders.Subject),
    error: h.get(DlqHeaders.Error),
    deliveries: Number(h.get(DlqHeaders.Deliveries) || 0),
    at: h.get(DlqHeaders.At) || m.time.toISOString(),
    bytes: m.data.length,
    // Only what came out of a stream can go back into one; a dead core request had a requester
    // that has long given up.
    retryable: h.get(DlqHeaders.Stream) !== '',
    headers,
    payload: new TextDecoder().decode(m.data),
  };
}

async function stored(jsm: JetStreamManager, seq: number): Promise<StoredMsg | null> {
  try {
    return await jsm.streams.getMessage(DLQ_STREAM, { seq });
  } catch (err) {
    if (isJsError(err, JsErrCode.NoMessageFound)) return null;
    throw err;
  }
}

/**
 * One page of dead letters, oldest first: at most `limit` after sequence `after`. Each step asks
 * the server for the next stored message at or past a sequence (next_by_subj), so deleted
 * (retried) sequences cost nothing and a page costs `limit` lookups however long the stream is.
 * `next_after` is the cursor for the following page (null at the end).
 */
export async function pageDeadLetters(
  jsm: JetStreamManager,
  opts: { after?: number; limit?: number } = {},
): Promise<{ total: number; items: DeadLetterSummary[]; next_after: number | null }> {
  const limit = Math.max(1, opts.limit ?? 100);
  const { state } = await jsm.streams.info(DLQ_STREAM);
  const items: DeadLetterSummary[] = [];
  let seq = Math.max(opts.after ?? 0, state.first_seq - 1) + 1;
  while (items.length < limit && state.messages > 0 && seq <= state.last_seq) {
    const m = await nextStored(jsm, seq);
    if (!m) break;
    const { headers: _h, payload: _p, ...summary } = describe(m);
    items.push(summary);
    seq = m.seq + 1;
  }
  const last = items.at(-1)?.seq;
  return { total: state.messages, items, next_after: last !== undefined && last < state.last_seq && items.length === limit ? last : null };
}

/** Oldest first, at most `limit`. */
export async function listDeadLetters(jsm: JetStreamManager, limit = 100): Promise<{ total: number; items: DeadLetterSummary[] }> {
  const { total, items } = await pageDeadLetters(jsm, { limit });
  return { total, items };
}

async function nextStored(jsm: JetStreamManager, seq: number): Promise<StoredMsg | null> {
  try {
    // STREAM.MSG.GET with next_by_subj (nats-server 2.9+); the client's type lists it for direct gets only.
    return await jsm.streams.getMessage(DLQ_STREAM, { seq, next_by_subj: DLQ_SUBJECTS } as unknown as { seq: number });
  } catch (err) {
    if (isJsError(err, JsErrCode.NoMessageFound)) return null;
    throw err;
  }
}

export async function showDeadLetter(jsm: JetStreamManager, seq: number): Promise<DeadLetterDetail | null> {
  const m = await stored(jsm, seq);
  return m ? describe(m) : null;
}

/**
 * Puts a dead letter back on its original subject with its original headers and removes it from
 * the DLQ. The consumers' inboxes keep this from repeating an effect that did happen.
 */
export async function retryDeadLetter(js: JetStreamClient, jsm: JetStreamManager, seq: number): Promise<'retried' | 'not_found' | 'not_retryable'> {
  const m = await stored(jsm, seq);
  if (!m) return 'not_found';
  const d = describe(m);
  if (!d.retryable) return 'not_retryable';
  const h = natsHeaders();
  for (const [k, vs] of m.header) {
    if (k.startsWith('Orderflow-Dlq-')) continue;
    for (const v of vs) h.append(k, v);
  }
  await publishToStream(js, { id: `dlq-retry:${seq}`, subject: d.subject, payload: m.data, headers: h });
  await jsm.streams.deleteMessage(DLQ_STREAM, seq, false);
  return 'retried';
}

export async function purgeDeadLetters(jsm: JetStreamManager): Promise<number> {
  return (await jsm.streams.purge(DLQ_STREAM)).purged;
}
