import { z } from 'zod';
import { parseAmountToCents } from '../orders/money.js';

/** Every HTTP input orderflow accepts, in one place. */

export const orderInput = z.object({
  customer_email: z
    .string({ error: 'Enter an email address.' })
    .trim()
    .toLowerCase()
    .max(254, 'An email address has at most 254 characters.')
    .pipe(z.email({ error: 'Enter a valid email address, like ada@example.com.' })),
  amount: z
    .union([z.string(), z.number()], { error: 'Enter an amount, like 12.50.' })
    .transform((v, ctx) => {
      const cents = parseAmountToCents(v);
      if (cents === null) {
        ctx.addIssue({ code: 'custom', message: 'Enter an amount with at most two decimals, like 12.50.' });
        return z.NEVER;
      }
      if (cents <= 0) {
        ctx.addIssue({ code: 'custom', message: 'The amount must be greater than zero.' });
        return z.NEVER;
      }
      return cents;
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
