// A small five-field cron matcher (minute hour day-of-month month day-of-week), evaluated in
// UTC. Supports `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists, month and weekday
// names (JAN, MON) and 7 for Sunday. When both day fields are restricted a day matches if
// either does, as in Vixie cron. Quartz extensions (L, W, #, ?) are rejected with a message.

export interface CronSpec {
  minutes: ReadonlySet<number>;
  hours: ReadonlySet<number>;
  days: ReadonlySet<number>;
  months: ReadonlySet<number>;
  weekdays: ReadonlySet<number>;
  daysRestricted: boolean;
  weekdaysRestricted: boolean;
}

/** A cron expression that cannot be parsed; the message names the field. */
export class CronSyntaxError extends Error {
  override name = 'CronSyntaxError';
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface FieldDef {
  label: string;
  min: number;
  max: number;
  names?: string[];
  namesFrom?: number;
}

const FIELDS: FieldDef[] = [
  { label: 'minute', min: 0, max: 59 },
  { label: 'hour', min: 0, max: 23 },
  { label: 'day-of-month', min: 1, max: 31 },
  { label: 'month', min: 1, max: 12, names: MONTHS, namesFrom: 1 },
  { label: 'day-of-week', min: 0, max: 7, names: WEEKDAYS, namesFrom: 0 },
];

function value(text: string, def: FieldDef): number {
  const upper = text.toUpperCase();
  const named = def.names?.indexOf(upper) ?? -1;
  if (named >= 0) return named + (def.namesFrom ?? 0);
  if (!/^\d+$/.test(text))
    throw new CronSyntaxError(`${def.label}: "${text}" is not a number${def.names ? ' or name' : ''}`);
  const n = Number(text);
  if (n < def.min || n > def.max) throw new CronSyntaxError(`${def.label}: ${n} is outside ${def.min}-${def.max}`);
  return n;
}

function parseField(text: string, def: FieldDef): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^([^/]+)(?:\/(\d+))?$/.exec(part);
    if (!m) throw new CronSyntaxError(`${def.label}: cannot parse "${part}"`);
    const [, range, stepText] = m as unknown as [string, string, string | undefined];
    const step = stepText === undefined ? 1 : Number(stepText);
    if (step < 1) throw new CronSyntaxError(`${def.label}: step must be at least 1`);
    let lo: number;
    let hi: number;
    if (range === '*') {
      lo = def.min;
      hi = def.max === 7 ? 6 : def.max;
    } else if (range.includes('-')) {
      const [a, b] = range.split('-');
      lo = value(a ?? '', def);
      hi = value(b ?? '', def);
      if (lo > hi) throw new CronSyntaxError(`${def.label}: range ${range} runs backwards`);
    } else {
      lo = value(range, def);
      hi = stepText === undefined ? lo : def.max;
    }
    for (let v = lo; v <= hi; v += step) out.add(def.max === 7 && v === 7 ? 0 : v);
  }
  return out;
}

/** Parse a five-field cron expression; throws CronSyntaxError naming the bad field. */
export function parseCron(expression: string): CronSpec {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5)
    throw new CronSyntaxError(
      `expected five fields (minute hour day-of-month month day-of-week), got ${fields.length}`,
    );
  const [minutes, hours, days, months, weekdays] = fields.map((f, i) => parseField(f, FIELDS[i] as FieldDef)) as [
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
  ];
  return {
    minutes,
    hours,
    days,
    months,
    weekdays,
    daysRestricted: fields[2] !== '*',
    weekdaysRestricted: fields[4] !== '*',
  };
}

function dayMatches(spec: CronSpec, d: Date): boolean {
  const dom = spec.days.has(d.getUTCDate());
  const dow = spec.weekdays.has(d.getUTCDay());
  if (spec.daysRestricted && spec.weekdaysRestricted) return dom || dow;
  return dom && dow;
}

/** The first time strictly after `after` (to the minute, UTC) that the expression matches. */
export function nextCronAfter(spec: CronSpec, after: Date): Date {
  const t = new Date(after.getTime());
  t.setUTCSeconds(0, 0);
  t.setUTCMinutes(t.getUTCMinutes() + 1);
  // Skips whole months, days and hours that cannot match, so this ends quickly; the bound
  // only guards against expressions that never match (e.g. 31 FEB).
  const limit = after.getTime() + 8 * 366 * 86_400_000;
  while (t.getTime() <= limit) {
    if (!spec.months.has(t.getUTCMonth() + 1)) {
      t.setUTCMonth(t.getUTCMonth() + 1, 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!dayMatches(spec, t)) {
      t.setUTCDate(t.getUTCDate() + 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!spec.hours.has(t.getUTCHours())) {
      t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
      continue;
    }
    if (!spec.minutes.has(t.getUTCMinutes())) {
      t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
      continue;
    }
    return t;
  }
  throw new CronSyntaxError('the expression matches no date');
}
