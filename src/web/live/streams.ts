import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge } from 'prom-client';
import { registry } from '../../observability/metrics.js';
import { edgeBody } from '../edge/refuse.js';

/**
 * Server-sent-event streams, bounded: at most `maxClients` open in total and `maxPerIp` per
 * client address (beyond: 503 / 429 too_many_streams with Retry-After), and a client that does not
 * read is dropped rather than buffered for: once more than `maxBufferBytes` wait in its socket's
 * write buffer (on a send, or at the sweep every few seconds when nothing is sent), or once a
 * write has waited for 'drain' longer than `stallMs`, the connection is closed. The browser's
 * EventSource reconnects on its own once it reads again.
 */
export interface StreamLimits {
  maxClients: number;
  maxPerIp: number;
  maxBufferBytes?: number;
  stallMs?: number;
}

const open = new Gauge({ name: 'orderflow_sse_streams', help: 'Open server-sent-event streams', registers: [registry] });
const dropped = new Counter({
  name: 'orderflow_sse_dropped_total',
  help: 'SSE clients dropped because they did not read (buffer over the bound)',
  registers: [registry],
});
const refused = new Counter({
  name: 'orderflow_sse_refused_total',
  help: 'SSE connections refused by the caps, by reason',
  labelNames: ['reason'] as const,
  registers: [registry],
});

export interface OpenStream {
  /** Sends one event unless the client is too far behind, in which case it is dropped. */
  send(message: { event: string; data: unknown }): void;
}

interface Tracked {
  reply: FastifyReply;
  stalledSince: number | undefined;
}

export class StreamRegistry {
  private readonly perIp = new Map<string, number>();
  private readonly streams = new Set<Tracked>();
  private readonly sweep: NodeJS.Timeout;
  private readonly maxBufferBytes: number;
  private readonly stallMs: number;

  constructor(private readonly limits: StreamLimits) {
    this.maxBufferBytes = limits.maxBufferBytes ?? 64 * 1024;
    this.stallMs = limits.stallMs ?? 30_000;
    this.sweep = setInterval(() => this.dropSlow(), 2000);
    this.sweep.unref();
  }

  get size(): number {
    return this.streams.size;
  }

  /** Admits a stream (and then tracks it until it closes), or answers the refusal and returns null. */
  open(req: FastifyRequest, reply: FastifyReply): OpenStream | null {
    const ip = req.ip;
    if (this.streams.size >= this.limits.maxClients)
      return this.refuse(reply, 503, 'total', `The server has its maximum of ${this.limits.maxClients} live streams open (SSE_MAX_CLIENTS); retry in a while.`);
    const mine = this.perIp.get(ip) ?? 0;
    if (mine >= this.limits.maxPerIp)
      return this.refuse(reply, 429, 'per_ip', `Your address has ${mine} live streams open, the most allowed (SSE_MAX_PER_IP); close a tab and retry.`);
    const t: Tracked = { reply, stalledSince: undefined };
    this.streams.add(t);
    this.perIp.set(ip, mine + 1);
    open.set(this.streams.size);
    // @fastify/sse waits for 'drain' once per write that found the socket full; the byte bound
    // below caps how many such writes can wait (64 KiB of events), so many listeners here are
    // expected, not a leak.
    reply.raw.setMaxListeners(Math.ceil(this.maxBufferBytes / 64) + 10);
    reply.raw.once('close', () => {
      if (!this.streams.delete(t)) return;
      const n = (this.perIp.get(ip) ?? 1) - 1;
      if (n > 0) this.perIp.set(ip, n);
      else this.perIp.delete(ip);
      open.set(this.streams.size);
    });
    return {
      send: (message) => {
        if (reply.raw.destroyed || this.tooSlow(t)) return;
        void reply.sse.send(message).catch(() => undefined);
      },
    };
  }

  close(): void {
    clearInterval(this.sweep);
    for (const t of this.streams) t.reply.raw.destroy();
  }

  private tooSlow(t: Tracked, now = Date.now()): boolean {
    const raw = t.reply.raw;
    if (raw.writableNeedDrain) t.stalledSince ??= now;
    else t.stalledSince = undefined;
    if (raw.writableLength <= this.maxBufferBytes && (t.stalledSince === undefined || now - t.stalledSince < this.stallMs)) return false;
    dropped.inc();
    t.reply.log.info({ buffered: raw.writableLength }, 'dropped an SSE client that does not read');
    raw.destroy();
    return true;
  }

  private dropSlow(): void {
    for (const t of this.streams) if (!t.reply.raw.destroyed) this.tooSlow(t);
  }

  private refuse(reply: FastifyReply, status: number, reason: 'total' | 'per_ip', message: string): null {
    refused.inc({ reason });
    void reply.code(status).header('retry-after', '10').type('application/json').send(edgeBody('too_many_streams', message));
    return null;
  }
}
