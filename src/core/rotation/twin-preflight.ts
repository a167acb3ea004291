import type { ClientBase } from 'pg';
import type { AccountConfig } from '../config/config-schema.js';
import { AdminPrivilegeError, TwinRoleError } from '../errors.js';
import { quoteIdent } from '../pg/quote.js';
import { profileDifferences, readRoleProfile, roleHoldings, type RoleProfile } from '../pg/role-profile.js';
import { createTwinRole, groupsWithoutAdminOption } from '../pg/role-twin.js';
import type { AdminInfo } from '../pg/role-admin.js';
import { accountError } from './account-error.js';

// createTwin in the pre-flight: before an alternating account's first rotation, roles[1] is
// created as a copy of roles[0] (or, when it already exists, proven to be one); on every later
// rotation a difference between the two is drift, reported as a warning.

type AlternatingAccount = Extract<AccountConfig, { strategy: 'alternating' }>;

/** What the twin pre-flight decided: the twin to create at the end of pre-flight, or none. */
export interface TwinPlan {
  /** The first role's profile when roles[1] is still to be created. */
  create: RoleProfile | null;
}

/** Attributes pgrotate never gives a login it creates. */
function refusedAttributes(p: RoleProfile): string[] {
  return [
    ...(p.superuser ? ['SUPERUSER'] : []),
    ...(p.createRole ? ['CREATEROLE'] : []),
    ...(p.replication ? ['REPLICATION'] : []),
  ];
}

/**
 * Check the pair before anything changes. `firstRotation`: the store holds no credential of
 * the account yet, so a differing roles[1] is someone else's role, not drift.
 */
export async function checkTwin(
  client: ClientBase,
  account: AlternatingAccount,
  admin: AdminInfo,
  firstRotation: boolean,
  warnings: string[],
): Promise<TwinPlan> {
  const [first, second] = account.roles;
  const where = `on target ${account.target}`;
  const fail = (msg: string) => accountError(TwinRoleError, account, `account ${account.name}: ${msg}`);
  const pFirst = (await readRoleProfile(client, first)) as RoleProfile;
  const pSecond = await readRoleProfile(client, second);
  if (pSecond && !firstRotation) {
    const diffs = profileDifferences(pFirst, pSecond);
    if (diffs.length > 0) {
      warnings.push(
        `account ${account.name}: the alternating logins ${JSON.stringify(first)} and ${JSON.stringify(second)} ${where} have drifted apart: ${diffs.join('; ')}; grant or set the same on both, or on a NOLOGIN group role both belong to`,
      );
    }
    return { create: null };
  }
  const refused = refusedAttributes(pFirst);
  if (refused.length > 0) {
    throw fail(
      `role ${JSON.stringify(first)} ${where} has ${refused.join(', ')}; pgrotate never creates a login with ${refused.join(' or ')}: create ${JSON.stringify(second)} yourself and drop createTwin`,
    );
  }
  const holdings = await roleHoldings(client, first);
  if (holdings.length > 0) {
    const group = `${first}_owner`;
    throw fail(
      `role ${JSON.stringify(first)} ${where} ${holdings.join('; ')}, which a twin login would not have. Fix: move them to a NOLOGIN group role both logins belong to, e.g. CREATE ROLE ${quoteIdent(group)} NOLOGIN; GRANT ${quoteIdent(group)} TO ${quoteIdent(first)}; REASSIGN OWNED BY ${quoteIdent(first)} TO ${quoteIdent(group)} (in each database); grant the same privileges to ${quoteIdent(group)} and REVOKE them from ${quoteIdent(first)}`,
    );
  }
  if (pSecond) {
    const diffs = profileDifferences(pFirst, pSecond);
    if (diffs.length > 0) {
      throw fail(
        `role ${JSON.stringify(second)} ${where} already exists and is not a twin of ${JSON.stringify(first)} (${diffs.join('; ')}); drop it, rename the account's second role, or make it the same, then rerun`,
      );
    }
    return { create: null };
  }
  await checkAdminMayCreate(client, account, admin, pFirst);
  return { create: pFirst };
}

/** The admin may create the twin: CREATEROLE, and on PostgreSQL 16+ ADMIN OPTION on every group it grants. */
async function checkAdminMayCreate(
  client: ClientBase,
  account: AlternatingAccount,
  admin: AdminInfo,
  pFirst: RoleProfile,
): Promise<void> {
  const [, second] = account.roles;
  const where = `on target ${account.target}`;
  if (!admin.superuser && !admin.createRole) {
    throw accountError(
      AdminPrivilegeError,
      account,
      `account ${account.name}: createTwin needs the admin login ${admin.name} ${where} to have CREATEROLE to create role ${JSON.stringify(second)}`,
    );
  }
  const ungranted = await groupsWithoutAdminOption(client, pFirst);
  if (ungranted.length > 0) {
    const grants = ungranted
      .map((g) => `GRANT ${quoteIdent(g)} TO ${quoteIdent(admin.name)} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`)
      .join('; ');
    throw accountError(
      AdminPrivilegeError,
      account,
      `account ${account.name}: cannot create role ${JSON.stringify(second)} ${where} as a twin of ${JSON.stringify(pFirst.name)}: admin login ${admin.name} has no ADMIN OPTION on ${ungranted.map((g) => JSON.stringify(g)).join(' and ')} (PostgreSQL 16+): ${grants}`,
    );
  }
}

/** Create the planned twin (the last act of pre-flight); a refused statement leaves nothing behind. */
export async function createPlannedTwin(
  client: ClientBase,
  account: AlternatingAccount,
  first: RoleProfile,
  serverVersion: number,
): Promise<void> {
  const second = account.roles[1];
  try {
    await createTwinRole(client, first, second, serverVersion);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw accountError(
      TwinRoleError,
      account,
      `account ${account.name}: could not create role ${JSON.stringify(second)} on target ${account.target} as a twin of ${JSON.stringify(first.name)}: ${why}; nothing was created`,
      // A refusal (SQLSTATE class 42 or 22) stays refused; a lost connection may be retried.
      { cause: err, permanent: /^(42|22)/.test((err as { code?: string }).code ?? '') },
    );
  }
}
