import { serverKey } from './server-identity.js';

// Two accounts that manage the same role take its password from each other: each rotation of
// one leaves the other's stored credential dead (and an alternating pair expires the role it
// switches away from, or sets its password to NULL on a rollback). So a role may belong to one account only, per server: roles are
// cluster-wide, so targets on the same host and port share them whatever their `database`.
// Role names are compared exactly, as pgrotate always quotes them (Billing and billing are two roles).

/** The parts of an account this check reads (both strategies). */
type AccountRoles = { name: string; target: string } & ({ role: string } | { roles: readonly string[] });

/** One problem, at the key path of the later account's role. */
export interface SharedRoleIssue {
  path: Array<string | number>;
  message: string;
}

/** Every role that a second account also manages on the same server, each naming both accounts. */
export function sharedRoleIssues(
  accounts: readonly AccountRoles[],
  targets: Readonly<Record<string, { host: string; port: number } | undefined>>,
): SharedRoleIssue[] {
  // Server and role -> index of the first account naming it: one Map entry per role and nothing
  // else allocated per account, since configs for large fleets hold 100k accounts.
  const claims = new Map<string, number>();
  const issues: SharedRoleIssue[] = [];
  // Each target's server once: large fleets have many accounts per target.
  const servers = new Map<string, string>();
  for (const [name, t] of Object.entries(targets)) if (t) servers.set(name, serverKey(t.host, t.port));
  const claim = (index: number, server: string, role: string, key: Array<string | number>) => {
    const id = `${server}\u0000${role}`;
    const firstIndex = claims.get(id);
    if (firstIndex === undefined) {
      claims.set(id, index);
      return;
    }
    if (firstIndex === index) return; // the pair's own two roles are checked by its schema
    const first = accounts[firstIndex] as AccountRoles;
    const account = accounts[index] as AccountRoles;
    const target = targets[account.target] as { host: string; port: number };
    const where =
      first.target === account.target
        ? `target ${account.target}`
        : `targets ${first.target} and ${account.target}, the same server ${target.host}:${target.port}`;
    issues.push({
      path: ['accounts', index, ...key],
      message: `accounts "${first.name}" (accounts[${firstIndex}]) and "${account.name}" both manage role ${JSON.stringify(role)} on ${where}; each rotation would make the other account's stored credential stop logging in, so give each account its own role`,
    });
  };
  for (let index = 0; index < accounts.length; index++) {
    const account = accounts[index] as AccountRoles;
    const server = servers.get(account.target);
    if (server === undefined) continue; // an unknown target is reported on its own
    if ('roles' in account) account.roles.forEach((role, j) => claim(index, server, role, ['roles', j]));
    else claim(index, server, account.role, ['role']);
  }
  return issues;
}
