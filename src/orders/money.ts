/**
 * Money is integer minor units (cents) end to end. Input arrives as a decimal string
 * ("12.34") or a JSON number, and is converted from its decimal text, never by multiplying a float.
 */
const MAX_WHOLE_DIGITS = 13;
const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/** Why an amount was refused: each gets its own message, so a person knows what to change. */
export type AmountProblem = 'empty' | 'not_a_number' | 'not_positive' | 'too_many_decimals' | 'too_large';

export function parseAmount(input: string | number): { ok: true; cents: number } | { ok: false; problem: AmountProblem } {
  if (typeof input === 'number' && !Number.isFinite(input)) return { ok: false, problem: 'not_a_number' };
  if (typeof input === 'number' && Math.abs(input) >= 10 ** MAX_WHOLE_DIGITS) return { ok: false, problem: 'too_large' };
  const text = typeof input === 'number' ? String(input) : input.trim();
  if (text === '') return { ok: false, problem: 'empty' };
  const negative = /^-/.test(text);
  const m = DECIMAL.exec(negative ? text.slice(1).trim() : text);
  if (!m) return { ok: false, problem: 'not_a_number' };
  if (negative) return { ok: false, problem: 'not_positive' };
  if ((m[2] ?? '').length > 2) return { ok: false, problem: 'too_many_decimals' };
  if (m[1]!.replace(/^0+(?=\d)/, '').length > MAX_WHOLE_DIGITS) return { ok: false, problem: 'too_large' };
  const cents = Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
  return cents > 0 ? { ok: true, cents } : { ok: false, problem: 'not_positive' };
}

/** The amount in cents, or null for anything parseAmount refuses (zero and negatives included). */
export function parseAmountToCents(input: string | number): number | null {
  const r = parseAmount(input);
  return r.ok ? r.cents : null;
}

export function formatCents(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}
