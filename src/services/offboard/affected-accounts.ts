import type { AccountConfig, PgrotateConfig } from '../../core/config/config-schema.js';

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

/** Does any account's exposedTo, any group's members or any group's name mention `principal`? */
export function isNamedPrincipal(config: PgrotateConfig, principal: string): boolean {
  if (principal.trim() === '') return false;
  if (principal in config.groups) return true;
  if (Object.values(config.groups).some((members) => members.includes(principal))) return true;
  return config.accounts.some((a) => a.exposedTo.includes(principal));
}
