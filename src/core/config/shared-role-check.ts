import { serverKey } from './server-identity.js';

// Two accounts that manage the same role take its password from each other: each rotation of
// one leaves the other's stored credential dead (and an alternating pair sets a role it rotates
// away from to PASSWORD NULL). So a role may belong to one account only, per server: roles are
// cluster-wide, so targets on the same host and port share them whatever their `database`.
// Role names are compared exactly, as pgrotate always quotes them (Billing and billing are two roles).

/** The parts of an account this check reads (both strategies). */
type AccountRoles = { name: string; target: string } & ({ role: string } | { roles: readonly string[] });

/** One problem, at the key path of the later account's role. */
export interface SharedRoleIssue {
  path: Array<string | number>;
  message: string;
}

interface Claim {
  index: number;
  account: string;
  target: string;
}

/** Every role that a second account also manages on the same server, each naming both accounts. */
export function sharedRoleIssues(
  accounts: readonly AccountRoles[],
  targets: Readonly<Record<string, { host: string; port: number } | undefined>>,
): SharedRoleIssue[] {
  const claims = new Map<string, Claim>();
  const issues: SharedRoleIssue[] = [];
  accounts.forEach((account, index) => {
    const target = Object.hasOwn(targets, account.target) ? targets[account.target] : undefined;
    if (!target) return; // an unknown target is reported on its own
    const roles: Array<[string, Array<string | number>]> =
      'roles' in account ? account.roles.map((r, j) => [r, ['roles', j]]) : [[account.role, ['role']]];
    for (const [role, key] of roles) {
      const id = `${serverKey(target.host, target.port)}\u0000${role}`;
      const first = claims.get(id);
      if (!first) {
        claims.set(id, { index, account: account.name, target: account.target });
        continue;
      }
      if (first.index === index) continue; // the pair's own two roles are checked by its schema
      const where =
        first.target === account.target
          ? `target ${account.target}`
          : `targets ${first.target} and ${account.target}, the same server ${target.host}:${target.port}`;
      issues.push({
        path: ['accounts', index, ...key],
        message: `accounts "${first.account}" (accounts[${first.index}]) and "${account.name}" both manage role ${JSON.stringify(role)} on ${where}; each rotation would make the other account's stored credential stop logging in, so give each account its own role`,
      });
    }
  });
  return issues;
}
