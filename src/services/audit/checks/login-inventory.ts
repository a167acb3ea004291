import type { AccountConfig, PgrotateConfig } from '../../../core/config/config-schema.js';
import { type AuditContext, type RoleRow } from '../audit-context.js';

/** Every login role: managed or not, and how old its credential is by pgrotate's records. */
export function checkLoginInventory(ctx: AuditContext, roles: RoleRow[]): void {
  const now = (ctx.now ?? new Date()).getTime();
  for (const r of roles.filter((x) => x.rolcanlogin)) {
    const account = ctx.managed.get(r.rolname) ?? null;
    const rotated = account ? (ctx.rotatedAt.get(account.name) ?? null) : null;
    ctx.roles.push({
      name: r.rolname,
      managed: account !== null,
      account: account?.name ?? null,
      attributes: attributesOf(r),
      // node-postgres gives VALID UNTIL 'infinity' (what alternating rotations set) as the number Infinity.
      validUntil:
        r.rolvaliduntil === null
          ? null
          : r.rolvaliduntil instanceof Date && Number.isFinite(r.rolvaliduntil.getTime())
            ? r.rolvaliduntil.toISOString()
            : 'infinity',
      lastRotatedAt: rotated?.toISOString() ?? null,
      credentialAgeDays: rotated ? Math.floor((now - rotated.getTime()) / 86_400_000) : null,
    });
    if (account && !rotated) {
      ctx.findings.push({
        check: 'credential-age',
        severity: 'medium',
        subject: r.rolname,
        message: `managed by account ${account.name} but never rotated by pgrotate`,
        fix: `pgrotate rotate ${account.name}`,
      });
    } else if (account && rotated) {
      const every = scheduleInterval(account, ctx.config);
      if (every !== null && now - rotated.getTime() > every) {
        ctx.findings.push({
          check: 'credential-age',
          severity: 'medium',
          subject: r.rolname,
          message: `credential is ${Math.floor((now - rotated.getTime()) / 86_400_000)} days old, past its ${Math.round(every / 86_400_000)}-day schedule`,
          fix: `pgrotate rotate ${account.name}, and check that a worker or run-due job is running`,
        });
      }
    } else if (!account && r.rolname !== ctx.admin.role && ctx.withPassword?.has(r.rolname) !== false) {
      ctx.findings.push({
        check: 'unmanaged-login',
        severity: 'low',
        subject: r.rolname,
        message: `login role is not managed by pgrotate${ctx.withPassword ? ' and has a password' : ''}: nothing rotates its credential`,
        fix: `add an account for ${r.rolname} to pgrotate's config, or ALTER ROLE ${r.rolname} NOLOGIN if nobody uses it`,
      });
    }
  }
}

/** The role's privileged attributes, as CREATE ROLE spells them. */
function attributesOf(r: RoleRow): string[] {
  const out: string[] = [];
  if (r.rolsuper) out.push('SUPERUSER');
  if (r.rolcreaterole) out.push('CREATEROLE');
  if (r.rolcreatedb) out.push('CREATEDB');
  if (r.rolbypassrls) out.push('BYPASSRLS');
  if (r.rolreplication) out.push('REPLICATION');
  return out;
}

/** How often `account` should rotate (null: manual, so it is never late). */
function scheduleInterval(account: AccountConfig, config: PgrotateConfig): number | null {
  const s = account.schedule ?? config.defaults.schedule;
  if (typeof s === 'object' && 'every' in s) return s.every;
  // A cron schedule fires at least weekly in practice; a month of slack avoids false alarms.
  if (typeof s === 'object') return 31 * 86_400_000;
  return null;
}
