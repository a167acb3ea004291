import type { Severity } from '../../../core/audit/audit-types.js';
import { type AuditContext, type RoleRow } from '../audit-context.js';

const ATTRIBUTE_RULES: Array<{
  key: keyof RoleRow;
  name: string;
  login: Severity;
  nologin: Severity;
  why: string;
  fix: (role: string) => string;
}> = [
  {
    key: 'rolcreaterole',
    name: 'CREATEROLE',
    login: 'high',
    nologin: 'medium',
    why: 'can create roles and change the passwords of other non-superuser roles',
    fix: (r) => `ALTER ROLE ${r} NOCREATEROLE (keep it only on the login pgrotate uses)`,
  },
  {
    key: 'rolcreatedb',
    name: 'CREATEDB',
    login: 'medium',
    nologin: 'low',
    why: 'can create databases',
    fix: (r) => `ALTER ROLE ${r} NOCREATEDB`,
  },
  {
    key: 'rolbypassrls',
    name: 'BYPASSRLS',
    login: 'high',
    nologin: 'medium',
    why: 'ignores every row-level security policy',
    fix: (r) => `ALTER ROLE ${r} NOBYPASSRLS`,
  },
  {
    key: 'rolreplication',
    name: 'REPLICATION',
    login: 'high',
    nologin: 'medium',
    why: 'can stream a copy of every database in the cluster',
    fix: (r) => `ALTER ROLE ${r} NOREPLICATION (keep it on the replication login only)`,
  },
];

/** Roles with SUPERUSER, CREATEROLE, CREATEDB, BYPASSRLS or REPLICATION. */
export function checkRoleAttributes(ctx: AuditContext, roles: RoleRow[]): void {
  for (const r of roles) {
    if (r.rolsuper) {
      // The bootstrap superuser (oid 10) cannot be removed; the finding is about how it is reached.
      const bootstrap = r.oid === 10;
      const severity: Severity = !r.rolcanlogin ? 'medium' : bootstrap ? 'medium' : 'critical';
      ctx.findings.push({
        check: 'superuser',
        severity,
        subject: r.rolname,
        message: bootstrap
          ? `bootstrap superuser${r.rolcanlogin ? ' can log in' : ''}: anyone with its password bypasses every control`
          : `${r.rolcanlogin ? 'login' : 'group'} role is a superuser: it bypasses every permission check, RLS and audit setting`,
        fix: bootstrap
          ? `allow it only via local peer/cert authentication in pg_hba.conf, and use least-privilege roles for daily work`
          : `ALTER ROLE ${r.rolname} NOSUPERUSER (grant the specific privileges it needs instead)`,
      });
      // A superuser has every other attribute implicitly; one finding says it all.
      continue;
    }
    for (const rule of ATTRIBUTE_RULES) {
      if (!r[rule.key]) continue;
      const isAdmin = r.rolname === ctx.admin.role && rule.key === 'rolcreaterole';
      ctx.findings.push({
        check: 'privileged-role',
        severity: isAdmin ? 'info' : r.rolcanlogin ? rule.login : rule.nologin,
        subject: r.rolname,
        message: isAdmin
          ? `has ${rule.name}: this is pgrotate's admin login, which needs it to change passwords`
          : `has ${rule.name}: ${rule.why}`,
        fix: isAdmin ? 'keep this login out of daily use; only pgrotate should hold its password' : rule.fix(r.rolname),
      });
    }
  }
}
