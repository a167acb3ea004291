import type { Schedule } from '../config/config-schema.js';
import { nextCronAfter, parseCron } from './cron.js';
import { nextCronInZone } from './zoned-cron.js';
import { DEFAULT_CRON_WINDOW_MS, spreadOffset, spreadWindowForInterval } from './spread-offset.js';

/**
 * When an account is next due, given when it was rotated. Manual accounts are never due.
 * `every` schedules: `every` after the rotation, brought forward by the account's stable offset
 * (so the interval is a maximum age, never exceeded, and accounts rotated together drift apart).
 * Cron schedules: the next cron time after the rotation plus the account's offset within the
 * window, so the rotation starts inside [cron time, cron time + window). The cron time is UTC,
 * or the wall clock of `timezone` when given. Without an account name there is no offset.
 */
export function nextDueAfter(schedule: Schedule, rotatedAt: Date, account?: string): Date | null {
  if (schedule === 'manual') return null;
  if ('every' in schedule) {
    const offset = account === undefined ? 0 : spreadOffset(account, spreadWindowForInterval(schedule.every));
    return new Date(rotatedAt.getTime() + schedule.every - offset);
  }
  const spec = parseCron(schedule.cron);
  const at = schedule.timezone ? nextCronInZone(spec, rotatedAt, schedule.timezone) : nextCronAfter(spec, rotatedAt);
  const offset = account === undefined ? 0 : spreadOffset(account, schedule.window ?? DEFAULT_CRON_WINDOW_MS);
  return new Date(at.getTime() + offset);
}

/**
 * First due time of an account pgrotate has not rotated yet. Its credential's age is unknown,
 * so it is due soon, but spread: `every` accounts within their spread window from now, cron
 * accounts in their next window. A new fleet of 100k accounts therefore never comes due in
 * one burst.
 */
export function firstDueAt(schedule: Schedule, account: string, now: Date): Date | null {
  if (schedule === 'manual') return null;
  if ('every' in schedule)
    return new Date(now.getTime() + spreadOffset(account, spreadWindowForInterval(schedule.every)));
  return nextDueAfter(schedule, now, account);
}

/** A canonical text of a schedule, stored with the account so a changed schedule is noticed. */
export function scheduleKey(schedule: Schedule): string {
  if (schedule === 'manual') return 'manual';
  if ('every' in schedule) return `every:${schedule.every}`;
  const key = `cron:${schedule.cron.trim().split(/\s+/).join(' ')}:${schedule.window ?? DEFAULT_CRON_WINDOW_MS}`;
  // Without a zone the key stays as before, so existing plans are not redone on upgrade.
  return schedule.timezone ? `${key}:${schedule.timezone}` : key;
}
