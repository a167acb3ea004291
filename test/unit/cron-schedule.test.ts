import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/app/load-config.js';
import { CronSyntaxError, nextCronAfter, parseCron } from '../../src/core/schedule/cron.js';
import { firstDueAt, nextDueAfter, scheduleKey } from '../../src/core/schedule/next-due.js';
import { spreadOffset } from '../../src/core/schedule/spread-offset.js';

const at = (iso: string) => new Date(iso);
const next = (expr: string, after: string) => nextCronAfter(parseCron(expr), at(after)).toISOString();

describe('cron matcher (UTC)', () => {
  it('finds the next minute, hour, day, weekday and month', () => {
    expect(next('* * * * *', '2026-03-01T10:15:30Z')).toBe('2026-03-01T10:16:00.000Z');
    expect(next('0 3 * * *', '2026-03-01T10:15:00Z')).toBe('2026-03-02T03:00:00.000Z');
    expect(next('0 3 * * *', '2026-03-02T02:59:59Z')).toBe('2026-03-02T03:00:00.000Z');
    // 2026-03-02 is a Monday; "strictly after" moves to the next Monday.
    expect(next('0 3 * * 1', '2026-03-02T03:00:00Z')).toBe('2026-03-09T03:00:00.000Z');
    expect(next('0 3 * * MON', '2026-03-03T00:00:00Z')).toBe('2026-03-09T03:00:00.000Z');
    expect(next('30 1 15 JUN *', '2026-07-01T00:00:00Z')).toBe('2027-06-15T01:30:00.000Z');
    expect(next('0 0 1 1 *', '2026-12-31T23:59:00Z')).toBe('2027-01-01T00:00:00.000Z');
  });

  it('handles steps, ranges, lists and Sunday as 0 or 7', () => {
    expect(next('*/15 * * * *', '2026-03-01T10:16:00Z')).toBe('2026-03-01T10:30:00.000Z');
    expect(next('10-20/5 * * * *', '2026-03-01T10:16:00Z')).toBe('2026-03-01T10:20:00.000Z');
    expect(next('5,50 9-17 * * *', '2026-03-01T17:51:00Z')).toBe('2026-03-02T09:05:00.000Z');
    // 2026-03-01 is a Sunday.
    expect(next('0 12 * * 7', '2026-02-27T00:00:00Z')).toBe('2026-03-01T12:00:00.000Z');
    expect(next('0 12 * * 0', '2026-02-27T00:00:00Z')).toBe('2026-03-01T12:00:00.000Z');
  });

  it('matches either day field when both are restricted (Vixie cron)', () => {
    // The 13th, or any Friday: 2026-03-06 is a Friday, before the 13th.
    expect(next('0 0 13 * 5', '2026-03-01T00:00:00Z')).toBe('2026-03-06T00:00:00.000Z');
    expect(next('0 0 29 2 *', '2026-03-01T00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
  });

  it('rejects bad expressions with a message naming the field', () => {
    expect(() => parseCron('0 3 * *')).toThrow(/five fields/);
    expect(() => parseCron('60 * * * *')).toThrow(/minute: 60 is outside 0-59/);
    expect(() => parseCron('0 24 * * *')).toThrow(/hour/);
    expect(() => parseCron('0 0 L * *')).toThrow(CronSyntaxError);
    expect(() => parseCron('0 0 * * MON#2')).toThrow(/day-of-week/);
    expect(() => nextCronAfter(parseCron('0 0 31 2 *'), new Date())).toThrow(/matches no date/);
  });

  it('the config refuses a bad cron expression and names it', () => {
    const res = configSchema.safeParse({
      state: { url: 'postgres://x@h/db' },
      defaults: { schedule: { cron: '0 25 * * *' } },
    });
    expect(res.success).toBe(false);
    expect(JSON.stringify(res.error?.issues)).toMatch(/hour: 25 is outside 0-23/);
  });
});

describe('due times', () => {
  const day = 86_400_000;

  it('every: the interval is a maximum age, brought forward by the stable offset', () => {
    const rotated = at('2026-01-01T00:00:00Z');
    const due = nextDueAfter({ every: 90 * day }, rotated, 'billing-app') as Date;
    const offset = spreadOffset('billing-app', day);
    expect(due.getTime()).toBe(rotated.getTime() + 90 * day - offset);
    expect(nextDueAfter({ every: 90 * day }, rotated)?.getTime()).toBe(rotated.getTime() + 90 * day);
    expect(nextDueAfter('manual', rotated, 'x')).toBeNull();
  });

  it('cron: inside [cron time, cron time + window)', () => {
    for (const name of ['a', 'b', 'c', 'reports', 'billing']) {
      const due = nextDueAfter({ cron: '0 3 * * *', window: 2 * 3_600_000 }, at('2026-03-01T10:00:00Z'), name) as Date;
      expect(due.getTime()).toBeGreaterThanOrEqual(at('2026-03-02T03:00:00Z').getTime());
      expect(due.getTime()).toBeLessThan(at('2026-03-02T05:00:00Z').getTime());
    }
  });

  it('a new account is due within its spread window from now, never all at once', () => {
    const now = at('2026-03-01T00:00:00Z');
    const dues = Array.from(
      { length: 200 },
      (_, i) => (firstDueAt({ every: 90 * day }, `acct-${i}`, now) as Date).getTime() - now.getTime(),
    );
    expect(Math.min(...dues)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...dues)).toBeLessThan(day);
    expect(new Set(dues.map((d) => Math.floor(d / 60_000))).size).toBeGreaterThan(150);
    expect(firstDueAt('manual', 'x', now)).toBeNull();
  });

  it('schedule keys change when the schedule does', () => {
    expect(scheduleKey({ every: day })).not.toBe(scheduleKey({ every: 2 * day }));
    expect(scheduleKey({ cron: '0  3 * * *' })).toBe(scheduleKey({ cron: '0 3 * * *' }));
    expect(scheduleKey('manual')).toBe('manual');
  });
});
