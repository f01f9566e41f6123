import { z } from 'zod';
import { type AmountProblem, parseAmount } from '../orders/money.js';

/** Every HTTP input orderflow accepts, in one place. */

/** One message per reason an amount is refused: each says what is wrong and what to type instead. */
const AMOUNT_MESSAGES: Record<AmountProblem, string> = {
  empty: 'Enter an amount, like 12.50.',
  not_a_number: 'The amount must be a number written with digits and an optional point, like 12.50.',
  not_positive: 'The amount must be greater than zero.',
  too_many_decimals: 'Use at most two decimals (whole cents), like 12.50.',
  too_large: 'The amount is too large: at most 13 digits before the point.',
};

export const orderInput = z.object({
  customer_email: z
    .string({ error: 'Enter an email address.' })
    .trim()
    .toLowerCase()
    .max(254, 'An email address has at most 254 characters.')
    .pipe(z.email({ error: 'Enter a valid email address, like ada@example.com.' })),
  amount: z.union([z.string(), z.number()], { error: 'Enter an amount, like 12.50.' }).transform((v, ctx) => {
    const r = parseAmount(v);
    if (r.ok) return r.cents;
    ctx.addIssue({ code: 'custom', message: AMOUNT_MESSAGES[r.problem] });
    return z.NEVER;
  }),
});
export type OrderInput = z.output<typeof orderInput>;

export const listQuery = z.object({
  page: z.coerce.number().int().min(1).max(1_000_000).default(1),
  per_page: z.coerce.number().int().min(1).max(100).default(20),
});

export const orderParams = z.object({ id: z.uuid() });

/** A caller-supplied correlation id is kept only when it is a plain token (it ends up in headers and logs). */
export const correlationIdHeader = z.string().regex(/^[A-Za-z0-9._:-]{1,100}$/);

/** zod issues → `{ field: [messages] }`, for the JSON 400 and for the re-rendered form. */
export function fieldErrors(error: z.ZodError): Record<string, string[]> {
  const fields: Record<string, string[]> = {};
  for (const issue of error.issues) {
    const key = issue.path.length ? String(issue.path[0]) : '_';
    (fields[key] ??= []).push(issue.message);
  }
  return fields;
}
