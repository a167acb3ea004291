import type { Schedule } from '../config/config-schema.js';

/**
 * When an account is next due, given when it was rotated. `every` schedules count from the
 * rotation; manual accounts are never due. Cron schedules are computed by the scheduler.
 */
export function nextDueAfter(schedule: Schedule, rotatedAt: Date): Date | null {
  if (schedule === 'manual') return null;
  if ('every' in schedule) return new Date(rotatedAt.getTime() + schedule.every);
  return null;
}
