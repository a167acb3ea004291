// Wall-clock time in an IANA time zone, from the runtime's own tz database (Intl), so a cron
// schedule can name local times. A wall time is held as a Date whose UTC fields are the local
// fields ("fake UTC"), which lets the UTC cron matcher run on local time unchanged.

/** A time zone name the runtime does not know. */
export class UnknownTimeZoneError extends Error {
  override name = 'UnknownTimeZoneError';
}

const formatters = new Map<string, Intl.DateTimeFormat>();
// Offsets cached per 15-minute bucket: every tz transition since 1970 falls on a quarter hour,
// so one bucket has one offset. Accounts sharing a schedule ask for the same instants.
const offsets = new Map<string, number>();
const BUCKET_MS = 15 * 60_000;
const MAX_CACHED = 50_000;

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: zone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new UnknownTimeZoneError(`unknown time zone "${zone}"`);
    }
    formatters.set(zone, f);
  }
  return f;
}

/** Whether the runtime knows the IANA zone (Europe/Berlin, UTC). */
export function isKnownTimeZone(zone: string): boolean {
  try {
    formatter(zone);
    return true;
  } catch {
    return false;
  }
}

function computeOffset(zone: string, ms: number): number {
  const parts: Record<string, number> = {};
  for (const p of formatter(zone).formatToParts(new Date(ms)))
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const { year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0 } = parts;
  const wall = Date.UTC(year, month - 1, day, hour, minute, second);
  return wall - Math.floor(ms / 1000) * 1000;
}

/** The zone's offset from UTC at an instant, in milliseconds (Berlin in summer: +2h). */
export function offsetAt(zone: string, ms: number): number {
  const bucket = Math.floor(ms / BUCKET_MS);
  const key = `${zone}\u0000${bucket}`;
  let offset = offsets.get(key);
  if (offset === undefined) {
    offset = computeOffset(zone, bucket * BUCKET_MS);
    if (offsets.size >= MAX_CACHED) offsets.clear();
    offsets.set(key, offset);
  }
  return offset;
}

/** The wall time at an instant, as a fake-UTC Date. */
export function wallAt(zone: string, instant: Date): Date {
  return new Date(instant.getTime() + offsetAt(zone, instant.getTime()));
}

/**
 * The instant of a wall time. A time that exists twice (clocks go back) is its first
 * occurrence; a time that does not exist (clocks go forward) is the first instant after the
 * gap, e.g. 02:30 on a spring-forward night in Berlin is 03:00 CEST.
 */
export function instantOfWall(zone: string, wall: Date): Date {
  const w = wall.getTime();
  const day = 86_400_000;
  // Real zones change offset at most once within a day either side of a wall time.
  const before = offsetAt(zone, w - day);
  const after = offsetAt(zone, w + day);
  const valid = [w - before, w - after].filter((ms) => offsetAt(zone, ms) === w - ms);
  if (valid.length > 0) return new Date(Math.min(...valid));
  // In a gap: the transition lies between the two readings; find it to the minute.
  let lo = w - before;
  let hi = w - after;
  if (lo > hi) [lo, hi] = [hi, lo];
  while (hi - lo > 60_000) {
    const mid = lo + Math.max(1, Math.floor((hi - lo) / 120_000)) * 60_000;
    if (offsetAt(zone, mid) === before) lo = mid;
    else hi = mid;
  }
  return new Date(hi);
}
