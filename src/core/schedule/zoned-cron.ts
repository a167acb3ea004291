import { type CronSpec, nextCronAfter } from './cron.js';
import { instantOfWall, wallAt } from './zone-clock.js';

/**
 * The first instant strictly after `after` at which the expression matches the wall clock of
 * `zone`. Across daylight-saving changes no run is skipped and none doubled: a local time that
 * does not exist runs at the first instant after the gap, one that exists twice runs once, at
 * its first occurrence.
 */
export function nextCronInZone(spec: CronSpec, after: Date, zone: string): Date {
  let wall = wallAt(zone, after);
  for (;;) {
    wall = nextCronAfter(spec, wall);
    const at = instantOfWall(zone, wall);
    // A wall time in the repeated hour maps to its first occurrence, which may lie before `after`.
    if (at.getTime() > after.getTime()) return at;
  }
}
