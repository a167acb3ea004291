import { profileDifferences, readRoleProfile } from '../../../core/pg/role-profile.js';
import { type AuditContext } from '../audit-context.js';

/**
 * The two logins of each alternating account on this target are still twins: a membership,
 * attribute or setting on one only means applications behave differently after the next switch.
 */
export async function checkTwinDrift(ctx: AuditContext): Promise<void> {
  for (const account of ctx.config.accounts) {
    if (account.target !== ctx.target || account.strategy !== 'alternating') continue;
    const [a, b] = account.roles;
    const [pa, pb] = [await readRoleProfile(ctx.client, a), await readRoleProfile(ctx.client, b)];
    if (!pa || !pb) continue;
    const diffs = profileDifferences(pa, pb);
    if (diffs.length === 0) continue;
    ctx.findings.push({
      check: 'twin-drift',
      severity: 'medium',
      subject: `${a}/${b}`,
      message: `account ${account.name}: the alternating logins ${a} and ${b} differ: ${diffs.join('; ')}; applications behave differently after the next switch`,
      fix: 'grant or set the same on both logins, or better on a NOLOGIN group role both belong to',
    });
  }
}
