import { randomInt } from 'node:crypto';

// Crockford-style: no I, L, O, U, so a reference read out over the phone is unambiguous.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** `ORD-` and 8 random characters: 32^8 ≈ 1.1e12, with a unique index behind it. */
export function newOrderReference(): string {
  let s = 'ORD-';
  for (let i = 0; i < 8; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return s;
}

export const ORDER_REFERENCE = /^ORD-[0-9A-HJKMNP-TV-Z]{8}$/;
