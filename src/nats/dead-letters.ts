import type { JetStreamClient, MsgHdrs } from 'nats';
import { headers as natsHeaders } from 'nats';

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
  await js.publish(dlqSubject(dl.consumer), dl.data, {
    headers: h,
    // A worker that dies between dead-lettering and terming a message dead-letters it again on
    // redelivery; the same id keeps that to one entry.
    ...(dl.stream && dl.streamSeq !== undefined ? { msgID: `${dl.stream}:${dl.streamSeq}:${dl.consumer}` } : {}),
  });
}
