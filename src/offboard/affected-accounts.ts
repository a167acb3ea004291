import type { AccountConfig, PgrotateConfig } from '../config/config-schema.js';

/** The principal and every group that lists it: the names an `exposedTo` entry may use for it. */
export function principalNames(config: PgrotateConfig, principal: string): string[] {
  const groups = Object.entries(config.groups)
    .filter(([, members]) => members.includes(principal))
    .map(([group]) => group);
  return [principal, ...groups];
}

/** Accounts whose credentials the principal could have seen, directly or through a group. */
export function accountsExposedTo(config: PgrotateConfig, principal: string): AccountConfig[] {
  const names = new Set(principalNames(config, principal));
  return config.accounts.filter((a) => a.exposedTo.some((p) => names.has(p)));
}
