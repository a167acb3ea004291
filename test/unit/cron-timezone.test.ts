import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { parseConfigText } from '../../src/app/load-config.js';
import { parseCron } from '../../src/core/schedule/cron.js';
import { nextDueAfter, scheduleKey } from '../../src/core/schedule/next-due.js';
import { spreadOffset } from '../../src/core/schedule/spread-offset.js';
import { instantOfWall, wallAt } from '../../src/core/schedule/zone-clock.js';
import { nextCronInZone } from '../../src/core/schedule/zoned-cron.js';

// Europe/Berlin in 2027: clocks go forward on 2027-03-28 at 01:00Z (02:00 CET -> 03:00 CEST)
// and back on 2027-10-31 at 01:00Z (03:00 CEST -> 02:00 CET).
const BERLIN = 'Europe/Berlin';
const iso = (d: Date) => d.toISOString().replace('.000Z', 'Z');

/** The next `count` times of an expression, each strictly after the one before. */
function chain(expr: string, from: string, count: number, zone = BERLIN): string[] {
  const spec = parseCron(expr);
  const out: string[] = [];
  let t = new Date(from);
  for (let i = 0; i < count; i++) {
    t = nextCronInZone(spec, t, zone);
    out.push(iso(t));
  }
  return out;
}

describe('cron in a time zone across daylight-saving changes', () => {
  it('daily 02:30 on the spring-forward night runs once, at the first instant after the gap (03:00 CEST)', () => {
    expect(chain('30 2 * * *', '2027-03-25T12:00:00Z', 5)).toEqual([
      '2027-03-26T01:30:00Z',
      '2027-03-27T01:30:00Z',
      '2027-03-28T01:00:00Z',
      '2027-03-29T00:30:00Z',
      '2027-03-30T00:30:00Z',
    ]);
  });

  it('daily 02:30 on the fall-back night runs once, at the first occurrence (02:30 CEST)', () => {
    expect(chain('30 2 * * *', '2027-10-29T12:00:00Z', 4)).toEqual([
      '2027-10-30T00:30:00Z',
      '2027-10-31T00:30:00Z',
      '2027-11-01T01:30:00Z',
      '2027-11-02T01:30:00Z',
    ]);
    // Rotated during the repeated hour (first or second pass): the next run is the next day.
    for (const after of [
      '2027-10-31T00:30:00Z',
      '2027-10-31T00:45:00Z',
      '2027-10-31T01:10:00Z',
      '2027-10-31T01:30:00Z',
    ])
      expect(chain('30 2 * * *', after, 1)).toEqual(['2027-11-01T01:30:00Z']);
  });

  it('weekly schedules keep their local time on both transitions', () => {
    expect(chain('0 3 * * 1', '2027-03-20T00:00:00Z', 2)).toEqual(['2027-03-22T02:00:00Z', '2027-03-29T01:00:00Z']);
    expect(chain('0 3 * * 1', '2027-10-20T00:00:00Z', 2)).toEqual(['2027-10-25T01:00:00Z', '2027-11-01T02:00:00Z']);
    // On the Sundays of the change themselves, at a local time that is missing or doubled.
    expect(chain('30 2 * * 0', '2027-03-20T00:00:00Z', 3)).toEqual([
      '2027-03-21T01:30:00Z',
      '2027-03-28T01:00:00Z',
      '2027-04-04T00:30:00Z',
    ]);
    expect(chain('30 2 * * SUN', '2027-10-20T00:00:00Z', 3)).toEqual([
      '2027-10-24T00:30:00Z',
      '2027-10-31T00:30:00Z',
      '2027-11-07T01:30:00Z',
    ]);
  });

  it('several local times falling into one gap run once', () => {
    // 02:00, 02:30 and 03:00 are all 03:00 CEST on the spring-forward night.
    expect(chain('0,30 2,3 * * *', '2027-03-28T00:00:00Z', 3)).toEqual([
      '2027-03-28T01:00:00Z',
      '2027-03-28T01:30:00Z',
      '2027-03-29T00:00:00Z',
    ]);
  });

  it('a whole year of daily runs: one per local day, none skipped or doubled', () => {
    const runs = chain('30 2 * * *', '2026-12-31T12:00:00Z', 365).map((t) => new Date(t));
    const days = runs.map((r) => iso(wallAt(BERLIN, r)).slice(0, 10));
    expect(new Set(days).size).toBe(365);
    expect(days[0]).toBe('2027-01-01');
    expect(days[364]).toBe('2027-12-31');
    const times = runs.map((r) => iso(wallAt(BERLIN, r)).slice(11, 16));
    expect(times.filter((t) => t !== '02:30')).toEqual(['03:00']);
  });

  it('works west of UTC too (America/New_York, 2027-03-14 and 2027-11-07)', () => {
    const ny = 'America/New_York';
    expect(chain('30 2 * * *', '2027-03-13T12:00:00Z', 2, ny)).toEqual([
      '2027-03-14T07:00:00Z',
      '2027-03-15T06:30:00Z',
    ]);
    expect(chain('30 1 * * *', '2027-11-06T12:00:00Z', 2, ny)).toEqual([
      '2027-11-07T05:30:00Z',
      '2027-11-08T06:30:00Z',
    ]);
  });

  it('maps wall times to instants: first occurrence, or the end of the gap', () => {
    const wall = (s: string) => iso(instantOfWall(BERLIN, new Date(s)));
    expect(wall('2027-10-31T02:30:00Z')).toBe('2027-10-31T00:30:00Z');
    expect(wall('2027-03-28T02:59:00Z')).toBe('2027-03-28T01:00:00Z');
    expect(wall('2027-07-01T12:00:00Z')).toBe('2027-07-01T10:00:00Z');
  });
});

describe('due times with a time zone', () => {
  const schedule = { cron: '0 3 * * 1', timezone: BERLIN, window: 2 * 3_600_000 };

  it('keep the spread offset inside [local cron time, + window)', () => {
    for (const name of ['a', 'b', 'reports', 'billing']) {
      const due = nextDueAfter(schedule, new Date('2027-03-23T00:00:00Z'), name) as Date;
      // Monday 2027-03-29 03:00 CEST = 01:00Z.
      expect(due.getTime()).toBe(Date.parse('2027-03-29T01:00:00Z') + spreadOffset(name, 2 * 3_600_000));
    }
  });

  it('without a zone the cron stays UTC, and the zone is part of the schedule key', () => {
    const utc = nextDueAfter({ cron: '0 3 * * 1' }, new Date('2027-03-23T00:00:00Z'));
    expect(iso(utc as Date)).toBe('2027-03-29T03:00:00Z');
    expect(nextDueAfter({ cron: '0 3 * * 1', timezone: 'UTC' }, new Date('2027-03-23T00:00:00Z'))).toEqual(utc);
    expect(scheduleKey({ cron: '0 3 * * 1' })).toBe('cron:0 3 * * 1:3600000');
    expect(scheduleKey(schedule)).toBe('cron:0 3 * * 1:7200000:Europe/Berlin');
  });
});

describe('config: schedule.timezone', () => {
  const config = (schedule: string, defaults = '{ every: 90d }') => `
state: { url: postgres://rotator@127.0.0.1:5432/pgrotate }
providers: { local: { type: file, path: ./secrets.json } }
targets: { main: { host: 127.0.0.1, database: app, admin: { username: rotator, password: pw } } }
defaults: { schedule: ${defaults} }
accounts:
  - { name: billing-app, target: main, role: billing_app, provider: local, secret: pg/billing-app, schedule: ${schedule} }
`;
  const errorOf = (text: string) => {
    try {
      parseConfigText(text, {}, 'test.yaml');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('expected a ConfigError');
  };

  it('accepts a known zone', () => {
    const { config: cfg } = parseConfigText(config('{ cron: "0 3 * * 1", timezone: Europe/Berlin, window: 2h }'), {});
    expect(cfg.accounts[0]?.schedule).toEqual({ cron: '0 3 * * 1', timezone: 'Europe/Berlin', window: 7_200_000 });
  });

  it('refuses an unknown zone, naming the account and key path', () => {
    expect(errorOf(config('{ cron: "0 3 * * 1", timezone: Europe/Berln }'))).toContain(
      'accounts[0].schedule.timezone: unknown time zone "Europe/Berln"',
    );
    expect(errorOf(config('manual', '{ cron: "0 3 * * 1", timezone: Mars/Olympus }'))).toContain(
      'defaults.schedule.timezone: unknown time zone "Mars/Olympus"',
    );
  });
});
