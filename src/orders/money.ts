/**
 * Money is integer minor units (cents) end to end. Input arrives as a decimal string
 * ("12.34") or a JSON number, and is converted from its decimal text, never by multiplying a float.
 */
const DECIMAL = /^(\d{1,13})(?:\.(\d{1,2}))?$/;

export function parseAmountToCents(input: string | number): number | null {
  const text = typeof input === 'number' ? (Number.isFinite(input) ? String(input) : '') : input.trim();
  const m = DECIMAL.exec(text);
  if (!m) return null;
  const whole = Number(m[1]);
  const frac = Number((m[2] ?? '').padEnd(2, '0'));
  return whole * 100 + frac;
}

export function formatCents(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}
