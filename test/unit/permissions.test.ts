import { describe, expect, it } from 'vitest';
import { MetricEvents, OrderEvents, PaymentsValidate, WorkerHeartbeat } from '../../src/events/contracts.js';
import { Jobs, jobSubject } from '../../src/events/jobs.js';
import { IDENTITY_KINDS, type IdentityKind, inboxPrefix, permissionsFor } from '../../src/nats/auth/permissions.js';
import { subjectMatches } from '../../src/nats/subjects.js';

const matches = subjectMatches;
const mayPublish = (k: IdentityKind, subject: string) => permissionsFor(k).publish.some((p) => matches(p, subject));
const maySubscribe = (k: IdentityKind, subject: string) => permissionsFor(k).subscribe.some((p) => matches(p, subject));
const who = (may: (k: IdentityKind, s: string) => boolean, subject: string) => IDENTITY_KINDS.filter((k) => may(k, subject));

/** The permission table against the contracts: adding a subject without its permission fails here. */
describe('NATS permissions (src/nats/auth/permissions.ts)', () => {
  it('each event is published only by its writers (the reconciler re-publishes any outbox row)', () => {
    expect(who(mayPublish, OrderEvents.created.subject)).toEqual(['web', 'reconciler', 'cli']);
    expect(who(mayPublish, OrderEvents.paid.subject)).toEqual(['web', 'reconciler', 'cli']);
    expect(who(mayPublish, OrderEvents.declined.subject)).toEqual(['web', 'reconciler', 'cli']);
    expect(who(mayPublish, OrderEvents.shipped.subject)).toEqual(['fulfillment', 'reconciler', 'cli']);
    expect(who(mayPublish, MetricEvents.orders.subject)).toEqual(['fulfillment']);
    expect(who(mayPublish, jobSubject(Jobs.fulfillOrder))).toEqual(['web', 'fulfillment', 'reconciler', 'cli']);
  });

  it('only the payment service answers payments.validate; only the web app and the reconciler (and a person) ask', () => {
    expect(who(maySubscribe, PaymentsValidate.subject)).toEqual(['payments']);
    expect(who(mayPublish, PaymentsValidate.subject)).toEqual(['web', 'reconciler', 'cli']);
    expect(IDENTITY_KINDS.filter((k) => permissionsFor(k).allowResponses)).toEqual(['payments', 'setup']);
  });

  it('replies reach only their requester: each identity subscribes to its own inbox and no one else’s', () => {
    for (const k of IDENTITY_KINDS) {
      for (const other of IDENTITY_KINDS) expect(maySubscribe(k, `${inboxPrefix(other)}.abc.1`), `${k} on ${other}'s inbox`).toBe(k === other);
      expect(maySubscribe(k, '_INBOX.abc')).toBe(false);
      expect(mayPublish(k, `${inboxPrefix('web')}.abc.1`)).toBe(false);
    }
  });

  it('only setup deletes or purges streams and deletes consumers; cli may purge the DLQ', () => {
    for (const s of ['ORDERS', 'JOBS', 'DLQ']) {
      expect(who(mayPublish, `$JS.API.STREAM.DELETE.${s}`)).toEqual(['setup']);
      expect(who(mayPublish, `$JS.API.STREAM.UPDATE.${s}`)).toEqual(['setup']);
      expect(who(mayPublish, `$JS.API.CONSUMER.DELETE.${s}.x`)).toEqual(['setup']);
    }
    expect(who(mayPublish, '$JS.API.STREAM.PURGE.ORDERS')).toEqual(['setup']);
    expect(who(mayPublish, '$JS.API.STREAM.PURGE.DLQ')).toEqual(['setup', 'cli']);
  });

  it('a heartbeat subject belongs to its process; only the dashboard listens', () => {
    for (const k of ['web', 'payments', 'activity', 'fulfillment', 'reconciler'] as const) expect(who(mayPublish, WorkerHeartbeat.subjectFor(k))).toEqual([k]);
    expect(who(maySubscribe, WorkerHeartbeat.subjectFor('payments'))).toEqual(['web']);
  });

  it('nobody but the test identity subscribes to everything', () => {
    expect(who(maySubscribe, 'anything.at.all')).toEqual([]);
  });
});
