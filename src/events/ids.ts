import { v7 } from 'uuid';

/**
 * Ids of orders, events and jobs: UUIDv7 (RFC 9562), time-ordered to the millisecond. They are
 * the keys of the hottest indexes (orders, outbox, the inboxes, activity rows): a random UUIDv4
 * put every insert on a different B-tree leaf, so each order's commits wrote a page of 4 KiB per
 * key into the WAL, and the next transaction in another process read those pages back; ordered
 * keys land on the same few rightmost leaves. Every id draws its 73 random bits afresh: given
 * options, the package leaves out its per-millisecond counter, which would make the next id in
 * the same millisecond one more than the last, and an order page's URL (its id) guessable from
 * another's. What v7 gives away is the creation time, which the order shows anyway.
 */
export const newId = (): string => v7({});
