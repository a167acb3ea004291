import type { App } from '../../core/app.js';
import type { AccountConfig } from '../../core/config/account-config-schema.js';
import { messageOf } from '../../core/errors.js';
import type { AccountInGrace, NewUsageSample } from '../../core/state/previous-role-usage-store.js';
import { expirePreviousRole, type PreviousRoleExpiredHook } from './expire-previous-role.js';
import { describeUsage, samplePreviousRoles, type RoleUsage } from './previous-role-sample.js';

// Who still uses the previous login of alternating accounts (issue 27). Each scheduler tick of a
// worker, and each run-due pass, samples pg_stat_activity for the previous roles of every account
// in grace (one statement per target), stores the samples (one state statement), and acts:
//  - `credential.still-in-use` (alert and audit event) once per rotation, when sessions remain at
//    75% of the grace period;
//  - `expireWhenUnused`: VALID UNTIL now once the role had no session for that long;
//  - after the expiry, sessions still open (PostgreSQL does not end them) go to the audit trail.
// "Once" is claimed in the state database, so it holds across processes and restarts.

/** The fraction of the grace period after which remaining sessions alert. */
export const STILL_IN_USE_AT = 0.75;
/** How long after its expiry an account still gets its final check (a pgrotate that was down catches up). */
const FINAL_CHECK_LOOKBACK_MS = 86_400_000;

/** What one sampling pass did. */
export interface UsageTickResult {
  accounts: number;
  /** Statements sent to targets (one per target with accounts in grace). */
  targetQueries: number;
  alerts: number;
  expired: number;
  outlived: number;
  ms: number;
}

/** A previous role's sessions as `status` shows them. */
export interface PreviousRoleStatus extends RoleUsage {
  role: string;
  expiresAt: Date;
  sampledAt: Date;
  /** Read now (true) or the stored sample of the last tick (the target could not be read). */
  live: boolean;
  summary: string;
}

/** Samples previous roles and acts on what it sees; `onExpired` hooks run after each early expiry. */
export class PreviousRoleUsage {
  private readonly hooks: PreviousRoleExpiredHook[] = [];
  /** The configured accounts by name, for the array it was built from (a lookup per account in grace stays O(1)). */
  private byName: { from: readonly AccountConfig[]; map: Map<string, AccountConfig> } | null = null;

  constructor(private readonly app: App) {}

  /** Run `hook` after every early expiry of a previous role (PgBouncer: close its pooled connections). */
  onExpired(hook: PreviousRoleExpiredHook): void {
    this.hooks.push(hook);
  }

  /** One sampling pass: sample, store, alert, expire unused roles, report sessions that outlived the expiry. */
  async tick(): Promise<UsageTickResult> {
    const t0 = performance.now();
    const result: UsageTickResult = { accounts: 0, targetQueries: 0, alerts: 0, expired: 0, outlived: 0, ms: 0 };
    const store = this.app.state.previousRoleUsage;
    const inGrace = (await store.accountsInGrace(FINAL_CHECK_LOOKBACK_MS)).filter((g) => this.configured(g));
    result.accounts = inGrace.length;
    if (inGrace.length === 0) return { ...result, ms: performance.now() - t0 };
    const { usage, failed, queries } = await samplePreviousRoles(this.app, inGrace);
    result.targetQueries = queries;
    for (const [target, error] of failed)
      this.app.log.warn({ target, error }, 'could not sample the sessions of previous roles');
    const samples: NewUsageSample[] = [];
    for (const g of inGrace) {
      const u = usage.get(g.account);
      if (u) samples.push({ ...g, ...u, oldestBackendStart: u.oldestBackendStart });
    }
    const lastUsed = await store.recordSamples(samples);
    for (const g of inGrace) {
      const u = usage.get(g.account);
      if (!u) continue;
      try {
        await this.act(g, u, lastUsed.get(g.account) ?? g.switchedAt, result);
      } catch (err) {
        this.app.log.warn(
          { account: g.account, error: this.app.redactor.scrub(messageOf(err)) },
          'could not act on the usage of a previous role',
        );
      }
    }
    result.ms = performance.now() - t0;
    if (result.alerts + result.expired + result.outlived > 0)
      this.app.log.info({ ...result, ms: Math.round(result.ms) }, 'previous-role usage sampled');
    return result;
  }

  /** The previous roles in grace, sampled now (one statement per target); nothing is stored or acted on. */
  async live(): Promise<Map<string, PreviousRoleStatus>> {
    const inGrace = (await this.app.state.previousRoleUsage.accountsInGrace(0)).filter(
      (g) => this.configured(g) && g.now < g.expiresAt,
    );
    const { usage } = await samplePreviousRoles(this.app, inGrace);
    const out = new Map<string, PreviousRoleStatus>();
    for (const g of inGrace) {
      const u = usage.get(g.account) ?? g.sample;
      if (!u) continue;
      const live = usage.has(g.account);
      out.set(g.account, {
        role: g.role,
        sessions: u.sessions,
        clients: u.clients,
        oldestBackendStart: u.oldestBackendStart,
        expiresAt: g.expiresAt,
        sampledAt: live ? new Date() : (g.sample?.sampledAt ?? new Date()),
        live,
        summary: describeUsage(g.role, u),
      });
    }
    return out;
  }

  private account(name: string): AccountConfig | undefined {
    const accounts = this.app.config.accounts;
    if (this.byName?.from !== accounts)
      this.byName = { from: accounts, map: new Map(accounts.map((a) => [a.name, a])) };
    return this.byName.map.get(name);
  }

  private configured(g: AccountInGrace): boolean {
    const a = this.account(g.account);
    return a?.strategy === 'alternating' && a.target === g.target;
  }

  private async act(g: AccountInGrace, u: RoleUsage, lastUsedAt: Date, result: UsageTickResult): Promise<void> {
    const facts = {
      role: g.role,
      sessions: u.sessions,
      clients: u.clients,
      oldestBackendStart: u.oldestBackendStart?.toISOString() ?? null,
      expiresAt: g.expiresAt.toISOString(),
    };
    const now = g.now.getTime();
    const expires = g.expiresAt.getTime();
    if (now >= expires) {
      if (await this.reportOutlived(g, u, facts)) result.outlived++;
      return;
    }
    const switched = g.switchedAt.getTime();
    if (u.sessions > 0 && !g.alertedAt && now >= switched + STILL_IN_USE_AT * (expires - switched))
      if (await this.alertStillInUse(g, u, facts)) result.alerts++;
    const account = this.account(g.account);
    const idleFor = account?.strategy === 'alternating' ? account.expireWhenUnused : undefined;
    if (idleFor === undefined || u.sessions > 0 || g.expiredAt || now - lastUsedAt.getTime() < idleFor) return;
    const detail = { unusedSince: lastUsedAt.toISOString(), expireWhenUnusedMs: idleFor };
    if (await expirePreviousRole(this.app, g, detail, this.hooks)) result.expired++;
  }

  /** The check after the expiry: PostgreSQL refuses new logins but keeps open sessions; those go to the audit trail, once. */
  private async reportOutlived(g: AccountInGrace, u: RoleUsage, facts: Record<string, unknown>): Promise<boolean> {
    if (!(await this.app.state.previousRoleUsage.claimFinal(g.account, g.rotationId)) || u.sessions === 0) return false;
    await this.app.state.audit({
      account: g.account,
      rotationId: g.rotationId,
      kind: 'credential.sessions-outlived-expiry',
      actor: 'pgrotate',
      detail: {
        ...facts,
        hint: 'PostgreSQL does not end open sessions at VALID UNTIL; rotate with --terminate-sessions to end them',
      },
    });
    this.app.log.warn(
      { account: g.account, role: g.role, sessions: u.sessions },
      'sessions outlived the expiry of a previous role',
    );
    return true;
  }

  /** `credential.still-in-use`, once per rotation (claimed in the state database): an audit event and an alert. */
  private async alertStillInUse(g: AccountInGrace, u: RoleUsage, facts: Record<string, unknown>): Promise<boolean> {
    if (!(await this.app.state.previousRoleUsage.claimAlert(g.account, g.rotationId))) return false;
    const pct = Math.round(STILL_IN_USE_AT * 100);
    await this.app.state.audit({
      account: g.account,
      rotationId: g.rotationId,
      kind: 'credential.still-in-use',
      actor: 'pgrotate',
      detail: facts,
    });
    this.app.alerts.emit({
      event: 'credential.still-in-use',
      account: g.account,
      target: g.target,
      message: `account ${g.account}: the previous login is still in use (${describeUsage(g.role, u)}) at ${pct}% of its grace period; it expires at ${g.expiresAt.toISOString()}`,
      detail: { rotationId: g.rotationId, ...facts },
      at: new Date(),
    });
    return true;
  }
}

/** The sampler of this process, with every hook that follows an early expiry registered (add yours here). */
export function createPreviousRoleUsage(app: App): PreviousRoleUsage {
  return new PreviousRoleUsage(app);
}
