import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditReport } from '../../src/core/audit/audit-types.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// `pgrotate audit` as an admin login that cannot read one catalog or function, on real
// PostgreSQL 15. The privileges are revoked from PUBLIC inside this test's own target database
// only (catalog ACLs are per database), so other tests on the shared server are unaffected.
// Each check that needs what was revoked is listed under "not checked" with PostgreSQL's reason;
// every other check still runs.

let fx: PgFixture;
let appRole: string;
let cfg: { path: string; env: NodeJS.ProcessEnv };

const ROLE_CHECKS = [
  'credential-age',
  'unmanaged-login',
  'superuser',
  'privileged-role',
  'password-expiry',
  'password-policy',
  'connection-limit',
];
const SETTING_CHECKS = [
  'password-encryption',
  'statement-logging',
  'idle-timeout',
  'connection-logging',
  'connection-limit',
];
/** Checks that read what only a superuser may (pg_authid, pg_hba_file_rules, shared_preload_libraries). */
const SUPER_ONLY = ['hba-rules', 'md5-password', 'password-policy', 'pgaudit'];

async function asSuper(...sql: string[]): Promise<void> {
  const c = await fx.superClient(fx.targetDb);
  try {
    for (const s of sql) await c.query(s);
  } finally {
    await c.end();
  }
}

async function audit(): Promise<{ code: number; report: AuditReport; stderr: string }> {
  const r = await fx.cli(['--config', cfg.path, 'audit', 'main', '--json'], cfg.env);
  expect(r.stderr).not.toMatch(/^pgrotate: /m);
  expect([0, 1]).toContain(r.code);
  return { code: r.code, report: JSON.parse(r.stdout) as AuditReport, stderr: r.stderr };
}

const notChecked = (r: AuditReport) => new Set(r.notChecked.map((n) => n.check));
const rlsFinding = (r: AuditReport) =>
  r.findings.find((f) => f.check === 'row-level-security' && f.subject === 'public.customers');

beforeAll(async () => {
  fx = await createPgFixture(pgServer('pg15'));
  appRole = await fx.createRole(`lowpriv_app_${fx.suffix}`, { password: 'lowpriv-initial-password-1' });
  await asSuper('CREATE TABLE public.customers (id int, email text)');
  cfg = fx.writeConfig({
    accounts: [{ name: 'app', target: 'main', role: appRole, provider: 'local', secret: 'pg/app' }],
    targetExtra: { sensitiveTables: ['public.customers'] },
  });
});

afterAll(async () => {
  await fx?.cleanup();
});

describe('audit with a login that cannot read one catalog or function', () => {
  it('baseline: with the default privileges only the superuser-only checks are not checked', async () => {
    const { report } = await audit();
    expect([...notChecked(report)].sort()).toEqual([...SUPER_ONLY].sort());
    expect(report.admin).toEqual({ role: fx.rotator, superuser: false });
    expect(report.serverVersion).toMatch(/^15\./);
    expect(rlsFinding(report)).toMatchObject({ severity: 'high' });
    expect(report.roles.find((r) => r.name === appRole)).toMatchObject({ managed: true, account: 'app' });
  });

  const cases: Array<{ privilege: string; on: string; lost: string[]; reason: RegExp }> = [
    {
      privilege: 'SELECT',
      on: 'pg_catalog.pg_roles',
      lost: [...ROLE_CHECKS, 'statement-logging'],
      reason: /permission denied for view pg_roles/,
    },
    {
      privilege: 'EXECUTE',
      on: 'FUNCTION pg_catalog.current_setting(text)',
      lost: SETTING_CHECKS,
      reason: /permission denied for function current_setting/,
    },
    {
      privilege: 'SELECT',
      on: 'pg_catalog.pg_class',
      lost: ['row-level-security'],
      reason: /permission denied for table pg_class/,
    },
    {
      privilege: 'SELECT',
      on: 'pg_catalog.pg_namespace',
      lost: ['row-level-security'],
      reason: /permission denied for table pg_namespace/,
    },
    {
      privilege: 'SELECT',
      on: 'pg_catalog.pg_db_role_setting',
      lost: ['statement-logging'],
      reason: /permission denied for table pg_db_role_setting/,
    },
  ];

  it.each(cases)(
    'REVOKE $privilege ON $on: its checks are not checked, the rest still run',
    async ({ privilege, on, lost, reason }) => {
      await asSuper(`REVOKE ${privilege} ON ${on} FROM PUBLIC`);
      try {
        const { report } = await audit();
        const missing = notChecked(report);
        for (const check of lost) expect(missing, check).toContain(check);
        for (const n of report.notChecked.filter((x) => !SUPER_ONLY.includes(x.check))) {
          expect(n.reason).toMatch(reason);
          expect(n.reason).toContain(fx.rotator);
        }
        // Everything not lost still ran.
        if (!lost.includes('superuser'))
          expect(report.roles.find((r) => r.name === appRole)).toMatchObject({ managed: true });
        else expect(report.roles).toEqual([]);
        if (!lost.includes('row-level-security')) expect(rlsFinding(report)).toMatchObject({ severity: 'high' });
        else expect(rlsFinding(report)).toBeUndefined();
        for (const check of SETTING_CHECKS.filter((c) => !lost.includes(c)))
          expect(missing, check).not.toContain(check);
        expect(report.admin).toEqual({ role: fx.rotator, superuser: false });
      } finally {
        await asSuper(`GRANT ${privilege} ON ${on} TO PUBLIC`);
      }
    },
  );

  it('with all of them revoked the audit still reports, lists every check it could not run, and says so in the text output', async () => {
    const revoked = cases.map((c) => [c.privilege, c.on] as const);
    await asSuper(...revoked.map(([p, on]) => `REVOKE ${p} ON ${on} FROM PUBLIC`));
    try {
      const { report } = await audit();
      expect([...notChecked(report)].sort()).toEqual(
        [...new Set([...ROLE_CHECKS, ...SETTING_CHECKS, 'row-level-security', ...SUPER_ONLY])].sort(),
      );
      // Only the check that needs no catalog at all still reports: pgrotate's own unrotated login.
      expect(report.findings.map((f) => f.check)).toEqual(['own-login']);
      const text = await fx.cli(['--config', cfg.path, 'audit', 'main'], cfg.env);
      expect(text.stdout).toMatch(/Not checked \(the admin login cannot read it; this is not a clean result\):/);
      expect(text.stdout).toMatch(
        /row-level-security: table catalogs .*permission denied for table pg_(class|namespace)/,
      );
      expect(text.stdout).toMatch(
        /superuser: the role list \(pg_catalog\.pg_roles\): permission denied for view pg_roles/,
      );
    } finally {
      await asSuper(...revoked.map(([p, on]) => `GRANT ${p} ON ${on} TO PUBLIC`));
    }
  });
});
