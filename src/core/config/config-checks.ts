import type { AccountConfig } from './account-config-schema.js';
import type { Schedule } from './field-schemas.js';
import type { ProviderConfig, ProviderConfigKinds } from './provider-kind.js';
import { secretTemplateIssues } from './secret-template-check.js';
import { serverKey } from './server-identity.js';
import { type SharedRoleIssue, sharedRoleIssues } from './shared-role-check.js';
import type { TargetConfig } from './target-config-schema.js';

// The checks that span sections of the config (an account naming a target, a provider's rules
// for secret names, pgrotate's own logins), run once the sections themselves parsed.

/** A credential held by a provider: `{ provider, secret }`. */
interface SecretRef {
  provider: string;
  secret: string;
}

/** The parts of a parsed config the cross-section checks read. */
export interface CheckedConfig {
  state: { url: string; password?: string | SecretRef | undefined };
  groups: Record<string, string[]>;
  providers: Record<string, ProviderConfig>;
  targets: Record<string, TargetConfig>;
  defaults: { schedule: Schedule; secretTemplate?: Record<string, string> | undefined };
  accounts: AccountConfig[];
}

/** One problem, at its key path. */
export type ConfigIssue = SharedRoleIssue;

/** Every cross-section problem of `cfg`, in a stable order (accounts first). */
export function configIssues(cfg: CheckedConfig, kinds: ProviderConfigKinds): ConfigIssue[] {
  const nameProblem = secretNameProblem(kinds);
  return [
    ...accountIssues(cfg, nameProblem),
    ...secretTemplateIssues(cfg.defaults.secretTemplate, cfg.accounts),
    ...sharedRoleIssues(cfg.accounts, cfg.targets),
    ...groupIssues(cfg.groups),
    ...statePasswordIssues(cfg),
    ...ownLoginIssues(cfg),
    ...targetAdminIssues(cfg, nameProblem),
  ];
}

/** Why a secret name is not usable in a provider (null when it is, or its type has no rule). */
type NameProblem = (provider: ProviderConfig | undefined, secret: string, account: boolean) => string | null;

/** The secret-name check of each provider type, looked up by the entry's `type`. */
function secretNameProblem(kinds: ProviderConfigKinds): NameProblem {
  const byType = new Map(kinds.map((k) => [k.type, k]));
  return (provider, secret, account) =>
    provider ? (byType.get(provider.type)?.secretNameProblem?.(provider, secret, account) ?? null) : null;
}

/** Per account: unique names, known target and provider, a valid secret name, coherent durations. */
function accountIssues(cfg: CheckedConfig, secretNameProblem: NameProblem): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seen = new Map<string, number>();
  cfg.accounts.forEach((account, i) => {
    const at = (key: string): Array<string | number> => ['accounts', i, key];
    const earlier = seen.get(account.name);
    if (earlier !== undefined)
      issues.push({
        path: at('name'),
        message: `duplicate account name "${account.name}" (also accounts[${earlier}])`,
      });
    seen.set(account.name, i);
    if (!(account.target in cfg.targets))
      issues.push({
        path: at('target'),
        message: `account "${account.name}" names unknown target "${account.target}"`,
      });
    if (!(account.provider in cfg.providers))
      issues.push({
        path: at('provider'),
        message: `account "${account.name}" names unknown provider "${account.provider}"`,
      });
    const problem = secretNameProblem(cfg.providers[account.provider], account.secret, true);
    if (problem) issues.push({ path: at('secret'), message: `account "${account.name}": secret ${problem}` });
    issues.push(...durationIssues(account, cfg.defaults.schedule, at));
    issues.push(...selfAdminIssues(account, cfg.targets[account.target], at));
  });
  return issues;
}

/**
 * `admin: self` (on the account or its target) asks only what a role may do to itself: set its
 * own password. Alternating needs another role's password removed and its VALID UNTIL set, which
 * only an admin may do, and without it the retired role's password would keep working with nobody
 * able to expire it (I1 would hold, but the grace period would be a promise pgrotate cannot keep);
 * renewValidUntil needs CREATEROLE (PostgreSQL refuses VALID UNTIL on oneself).
 */
function selfAdminIssues(
  account: AccountConfig,
  target: TargetConfig | undefined,
  at: (key: string) => Array<string | number>,
): ConfigIssue[] {
  const self = account.admin === 'self' || target?.admin === 'self';
  if (!self) return [];
  const why = account.admin === 'self' ? 'admin: self' : `admin: self (from target "${account.target}")`;
  const issues: ConfigIssue[] = [];
  if (account.strategy === 'alternating')
    issues.push({
      path: at(account.admin === 'self' ? 'admin' : 'strategy'),
      message: `account "${account.name}": ${why} works only with the single-user strategy: an alternating pair needs an admin login to expire (VALID UNTIL) and clear the role applications no longer use, which a role cannot do to another role; give the target an admin login or use single-user`,
    });
  if (account.renewValidUntil !== undefined)
    issues.push({
      path: at('renewValidUntil'),
      message: `account "${account.name}": renewValidUntil needs an admin login with CREATEROLE (PostgreSQL refuses VALID UNTIL on a role's own login), so it cannot go with ${why}`,
    });
  return issues;
}

/** expireWhenUnused against the strategy and gracePeriod; renewValidUntil and gracePeriod against the rotation interval (when the schedule has one). */
function durationIssues(
  account: AccountConfig,
  defaultSchedule: Schedule,
  at: (key: string) => Array<string | number>,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (account.strategy !== 'alternating' && account.expireWhenUnused !== undefined)
    issues.push({
      path: at('expireWhenUnused'),
      message: `account "${account.name}": expireWhenUnused applies to alternating accounts only (a single-user account has no previous role)`,
    });
  if (
    account.strategy === 'alternating' &&
    account.expireWhenUnused !== undefined &&
    account.expireWhenUnused >= account.gracePeriod
  )
    issues.push({
      path: at('expireWhenUnused'),
      message: `account "${account.name}": expireWhenUnused must be shorter than gracePeriod (the previous role expires at the end of the grace period anyway)`,
    });
  const schedule = account.schedule ?? defaultSchedule;
  const every = typeof schedule === 'object' && 'every' in schedule ? schedule.every : null;
  if (every === null) return issues;
  if (account.renewValidUntil !== undefined && account.renewValidUntil <= every)
    issues.push({
      path: at('renewValidUntil'),
      message: `account "${account.name}": renewValidUntil must be longer than the rotation interval, or the password would expire before the next rotation`,
    });
  if (account.strategy === 'alternating' && account.gracePeriod >= every)
    issues.push({
      path: at('gracePeriod'),
      message: `account "${account.name}": gracePeriod must be shorter than the rotation interval, or a role would be re-keyed while still in use`,
    });
  return issues;
}

/** Groups list people only: not themselves, not other groups. */
function groupIssues(groups: Record<string, string[]>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const [group, members] of Object.entries(groups)) {
    if (members.includes(group)) issues.push({ path: ['groups', group], message: `group "${group}" lists itself` });
    const nested = members.filter((m) => m in groups);
    if (nested.length > 0)
      issues.push({
        path: ['groups', group],
        message: `group "${group}" lists groups (${nested.join(', ')}); list people only`,
      });
  }
  return issues;
}

/** A state password read from a provider names a configured one. */
function statePasswordIssues(cfg: CheckedConfig): ConfigIssue[] {
  const password = cfg.state.password;
  if (typeof password !== 'object' || password.provider in cfg.providers) return [];
  return [
    {
      path: ['state', 'password', 'provider'],
      message: `state password names unknown provider "${password.provider}"`,
    },
  ];
}

/** Whether `ref` (a state or admin password setting) reads the secret `account` writes. */
function sameRef(ref: unknown, account: SecretRef): boolean {
  return (
    typeof ref === 'object' &&
    ref !== null &&
    'provider' in ref &&
    'secret' in ref &&
    ref.provider === account.provider &&
    ref.secret === account.secret
  );
}

/** Accounts that rotate pgrotate's own logins (the state login, a target's admin) must do so safely. */
function ownLoginIssues(cfg: CheckedConfig): ConfigIssue[] {
  // Secrets pgrotate itself reads its logins from.
  const ownSources = new Set<string>();
  if (typeof cfg.state.password === 'object')
    ownSources.add(`${cfg.state.password.provider}\u0000${cfg.state.password.secret}`);
  for (const t of Object.values(cfg.targets))
    if (t.admin !== 'self' && 'provider' in t.admin) ownSources.add(`${t.admin.provider}\u0000${t.admin.secret}`);
  // Targets by their admin login (server and user name).
  const adminLogins = new Map<string, string[]>();
  for (const [name, t] of Object.entries(cfg.targets)) {
    if (t.admin === 'self' || !('username' in t.admin)) continue;
    const key = `${serverKey(t.host, t.port)}\u0000${t.admin.username}`;
    adminLogins.set(key, [...(adminLogins.get(key) ?? []), name]);
  }
  const stateLogin = stateLoginOf(cfg.state.url);
  const stateServer = stateLogin ? serverKey(stateLogin.host, stateLogin.port) : null;
  const issues: ConfigIssue[] = [];
  cfg.accounts.forEach((account, i) => {
    const target = cfg.targets[account.target];
    const server = target ? serverKey(target.host, target.port) : null;
    if (account.strategy === 'single-user' && server !== null) {
      if (account.role === stateLogin?.user && server === stateServer && !sameRef(cfg.state.password, account))
        // Rotating it would leave every later command with a stale state password.
        issues.push({
          path: ['accounts', i, 'role'],
          message: `account "${account.name}" rotates ${account.role}, the state database's login; set state.password: { provider: ${account.provider}, secret: ${account.secret} } so pgrotate reads the password it rotates`,
        });
      // The admin login of any target on the same server is the same role (roles are cluster-wide).
      for (const name of adminLogins.get(`${server}\u0000${account.role}`) ?? [])
        issues.push({
          path: ['accounts', i, 'role'],
          message: `account "${account.name}" rotates ${account.role}, the admin login of target ${name}; set that target's admin: { provider: ${account.provider}, secret: ${account.secret} } so pgrotate reads the password it rotates`,
        });
    }
    if (account.strategy === 'alternating' && ownSources.has(`${account.provider}\u0000${account.secret}`))
      issues.push({
        path: ['accounts', i, 'strategy'],
        message: `account "${account.name}" manages pgrotate's own login (its secret is the state or an admin credential); use the single-user strategy, since pgrotate connects as one fixed user`,
      });
  });
  return issues;
}

/** A target's admin credential read from a provider names a configured one, by a valid secret name. */
function targetAdminIssues(cfg: CheckedConfig, secretNameProblem: NameProblem): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const [name, target] of Object.entries(cfg.targets)) {
    if (target.admin === 'self' || !('provider' in target.admin)) continue;
    if (!(target.admin.provider in cfg.providers))
      issues.push({
        path: ['targets', name, 'admin', 'provider'],
        message: `target "${name}" admin names unknown provider "${target.admin.provider}"`,
      });
    const problem = secretNameProblem(cfg.providers[target.admin.provider], target.admin.secret, false);
    if (problem)
      issues.push({ path: ['targets', name, 'admin', 'secret'], message: `target "${name}" admin secret ${problem}` });
  }
  return issues;
}

/** User, host and port of the state URL (null when it does not parse; the URL is checked elsewhere). */
function stateLoginOf(url: string): { user: string; host: string; port: number } | null {
  try {
    const u = new URL(url);
    return {
      user: decodeURIComponent(u.username),
      host: decodeURIComponent(u.hostname).replace(/^\[(.*)\]$/, '$1'),
      port: u.port ? Number(u.port) : 5432,
    };
  } catch {
    return null;
  }
}
