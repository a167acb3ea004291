import { type AuditContext, type RoleRow, preloaded, setting } from '../audit-context.js';

/** Step 4: people choose the passwords of logins pgrotate does not manage, and nothing checks them. */
export async function checkPasswordPolicy(ctx: AuditContext, roles: RoleRow[]): Promise<void> {
  const unmanaged = roles.filter(
    (r) => r.rolcanlogin && !ctx.managed.has(r.rolname) && (!ctx.withPassword || ctx.withPassword.has(r.rolname)),
  );
  if (unmanaged.length === 0) return;
  const libs = preloaded(await setting(ctx.client, 'shared_preload_libraries'));
  if (libs.includes('passwordcheck') || libs.includes('credcheck')) return;
  ctx.findings.push({
    check: 'password-policy',
    severity: 'low',
    subject: 'shared_preload_libraries',
    message: `${unmanaged.length} login role(s) pgrotate does not manage have passwords chosen by people, and no password policy module (passwordcheck, credcheck) is loaded`,
    fix: `manage those logins with pgrotate, or add passwordcheck (or credcheck) to shared_preload_libraries and restart`,
  });
}
