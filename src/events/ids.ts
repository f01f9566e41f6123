import { v7 } from 'uuid';

/**
 * Ids of orders, events and jobs: UUIDv7 (RFC 9562), time-ordered, with 74 random bits. They are
 * the keys of the hottest indexes (orders, outbox, the inboxes, activity rows): a random UUIDv4
 * put every insert on a different B-tree leaf, so each order's commits wrote a page of 4 KiB per
 * key into the WAL, and the next transaction in another process read those pages back; ordered
 * keys land on the same few rightmost leaves. The 74 random bits keep an id unguessable (an order
 * page's URL among them); what v7 gives away is the creation time, which the order shows anyway.
 */
export const newId = (): string => v7();
