import type { PgrotateConfig } from '../../core/config/config-schema.js';

/**
 * The targets the first rotations of `rotate` will connect to as admin: those of the accounts
 * that start at once (the first `concurrency` of them). None when the rotations go to the
 * workers' queue instead (a dry run never does).
 */
export function rotateTargets(
  config: PgrotateConfig,
  names: string[],
  values: { all: boolean; 'dry-run': boolean },
  concurrency: number,
): string[] {
  if (config.queue !== undefined && !values['dry-run']) return [];
  const byName = new Map(config.accounts.map((a) => [a.name, a]));
  const accounts = values.all ? config.accounts : names.map((n) => byName.get(n));
  // A name that is not in the config fails the command before any rotation: nothing to open then
  // (closing would otherwise wait for a slow target's connection attempt).
  if (accounts.some((a) => a === undefined)) return [];
  return accounts.slice(0, concurrency).flatMap((a) => (a ? [a.target] : []));
}
