import { describe, expect, it } from 'vitest';
import { describeZodError } from '../../src/events/envelope.js';
import { childSpecs } from '../../src/cli/commands/start.js';
import { defaultScale, scaleArg } from '../../src/cli/scale.js';

const parse = (s: string) => {
  const r = scaleArg.safeParse(s);
  return r.success ? r.data : describeZodError(r.error);
};

describe('--scale', () => {
  it('gives each kind its count, the others one', () => {
    expect(parse('web=2, payments=3')).toEqual({ ...defaultScale(), web: 2, payments: 3 });
  });

  it('says in one line what is wrong with a bad value', () => {
    expect(parse('billing=2')).toBe('"billing=2": unknown process kind "billing" (kinds: web, payments, activity, fulfillment, reconciler)');
    expect(parse('web=0')).toMatch(/^"web=0": at least 1 copy/);
    expect(parse('web=two')).toBe('"web=two": the number of copies must be a whole number, like payments=2');
    expect(parse('web=1.5')).toMatch(/whole number/);
    expect(parse('web=17')).toMatch(/at most 16/);
    expect(parse('web')).toBe('"web" is not kind=count, like payments=2');
    expect(parse('web=2,web=3')).toBe('"web=3": web is given twice');
    expect(parse('')).toMatch(/give kind=count pairs/);
  });

  it('names copies <kind>-<n> when there are several, the kind alone when it runs once; only several web copies share a port', () => {
    const specs = childSpecs({ ...defaultScale(), web: 2, payments: 2 }, {});
    expect(specs.map((s) => s.name)).toEqual(['web-1', 'web-2', 'payments-1', 'payments-2', 'activity', 'fulfillment', 'reconciler']);
    expect(specs.find((s) => s.name === 'payments-2')!.args).toEqual(['worker', 'payments', '--instance', 'payments-2']);
    expect(specs.find((s) => s.name === 'activity')!.args).toEqual(['worker', 'activity']);
    expect(specs.filter((s) => s.sharesListeners).map((s) => s.name)).toEqual(['web-1', 'web-2']);
    expect(childSpecs(defaultScale(), {}).some((s) => s.sharesListeners)).toBe(false);
  });
});
