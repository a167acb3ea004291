import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditReport, Finding } from '../../src/core/audit/audit-types.js';
import { freePort } from '../support/free-port.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { startPgServer, stopPgServer, type PgServerInfo } from '../support/pg-server.js';

// `pgrotate audit` on a PostgreSQL 15 server of its own, so its server-wide settings can first be
// made clean and then broken with ALTER SYSTEM and pg_hba.conf lines, and no other test's roles
// show up in the cluster-wide role inventory.

let server: PgServerInfo;
let fx: PgFixture;
let app: string;

function auditConfig(admin: 'rotator' | 'superuser', sensitiveTables: string[]) {
  const { path, env } = fx.writeConfig({
    accounts: [{ name: 'app', target: 'main', role: app, provider: 'local', secret: 'pg/app' }],
    targetExtra: {
      sensitiveTables,
      ...(admin === 'superuser' ? { admin: { username: server.superuser, password: 'env:TEST_SUPER_PASSWORD' } } : {}),
    },
  });
  return { path, env: { ...env, TEST_SUPER_PASSWORD: server.superPassword } };
}

async function audit(admin: 'rotator' | 'superuser', sensitiveTables: string[], extra: string[] = []) {
  const { path, env } = auditConfig(admin, sensitiveTables);
  const run = await fx.cli(['--config', path, 'audit', 'main', '--json', ...extra], env);
  expect(run.stdout, run.stderr).not.toBe('');
  return { code: run.code, report: JSON.parse(run.stdout) as AuditReport, stderr: run.stderr };
}

const find = (r: AuditReport, check: string, subject?: string): Finding[] =>
  r.findings.filter((f) => f.check === check && (subject === undefined || f.subject === subject));

async function asSuper(db: string, ...sql: string[]): Promise<void> {
  const c = await fx.superClient(db);
  try {
    for (const s of sql) await c.query(s);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  server = startPgServer({
    label: 'audit',
    binDir: '/usr/lib/postgresql/15/bin',
    port: await freePort(),
    settings: { idle_in_transaction_session_timeout: '5min' },
  });
  fx = await createPgFixture(server);
  app = await fx.createRole(`app_${fx.suffix}`, { password: 'initial-password-not-managed-1' });
  // A well-kept application login has a connection limit (step 7); one test removes it.
  await asSuper('postgres', `ALTER ROLE ${app} CONNECTION LIMIT 20`);
  await asSuper(
    fx.targetDb,
    'CREATE TABLE public.orders (id int, customer text)',
    'ALTER TABLE public.orders ENABLE ROW LEVEL SECURITY',
    'CREATE TABLE public.customers (id int, email text)',
  );
  const { path, env } = auditConfig('rotator', []);
  const rotated = await fx.cli(['--config', path, 'rotate', 'app'], env);
  expect(rotated.code, rotated.stderr).toBe(0);
});

afterAll(async () => {
  await fx?.cleanup();
  if (server) stopPgServer(server);
});

describe('pgrotate audit', () => {
  it('clean server, non-superuser admin: no finding about the managed role or the server settings; what it cannot read is "not checked"', async () => {
    const { code, report } = await audit('rotator', ['public.orders']);
    expect(report.admin).toEqual({ role: fx.rotator, superuser: false });
    expect(report.findings.filter((f) => f.subject === app)).toEqual([]);
    for (const check of [
      'statement-logging',
      'idle-timeout',
      'password-encryption',
      'row-level-security',
      'md5-password',
      'hba-rules',
      'connection-limit',
      'pgaudit',
    ])
      expect(find(report, check), check).toEqual([]);
    expect(find(report, 'superuser')).toEqual([expect.objectContaining({ subject: 'postgres', severity: 'medium' })]);
    // The admin's own CREATEROLE is what pgrotate needs: information, not a problem.
    expect(find(report, 'privileged-role', fx.rotator)).toEqual([expect.objectContaining({ severity: 'info' })]);
    expect(find(report, 'own-login', fx.rotator)[0]?.message).toMatch(
      /pgrotate's admin and state login is not rotated/,
    );
    // shared_preload_libraries is superuser-only, so the checks that read it say they could not run.
    expect(report.notChecked.map((n) => n.check).sort()).toEqual([
      'hba-rules',
      'md5-password',
      'password-policy',
      'pgaudit',
    ]);
    expect(report.notChecked[0]?.reason).toMatch(/superuser/);
    const inventory = report.roles.find((r) => r.name === app);
    expect(inventory).toMatchObject({ managed: true, account: 'app', credentialAgeDays: 0, attributes: [] });
    expect(report.roles.find((r) => r.name === 'postgres')).toMatchObject({
      managed: false,
      attributes: ['SUPERUSER', 'CREATEROLE', 'CREATEDB', 'BYPASSRLS', 'REPLICATION'],
    });
    // Nothing at or above high on a clean server; the bootstrap superuser's login is medium.
    expect(code).toBe(0);
    expect((await audit('rotator', ['public.orders'], ['--fail-on', 'medium'])).code).toBe(1);
  });

  it('clean server, superuser admin: MD5 storage and pg_hba are checked and clean', async () => {
    const { report } = await audit('superuser', ['public.orders']);
    expect(report.notChecked).toEqual([]);
    expect(find(report, 'md5-password')).toEqual([]);
    expect(find(report, 'hba-rules')).toEqual([]);
    expect(report.findings.filter((f) => f.subject === app)).toEqual([]);
    // Seen from the superuser, the rotator is just another login with CREATEROLE.
    expect(find(report, 'privileged-role', fx.rotator)).toEqual([expect.objectContaining({ severity: 'high' })]);
  });

  it('reports each planted problem with a severity and a one-line fix, and fails at --fail-on', async () => {
    const s = fx.suffix;
    await asSuper(
      'postgres',
      `CREATE ROLE su_${s} LOGIN SUPERUSER PASSWORD 'su-password-1'`,
      `CREATE ROLE cdb_${s} LOGIN CREATEDB VALID UNTIL '2999-01-01'`,
      `CREATE ROLE brl_${s} NOLOGIN BYPASSRLS`,
      `SET password_encryption = 'md5'`,
      `CREATE ROLE md5_${s} LOGIN PASSWORD 'x' VALID UNTIL '2999-01-01'`,
      `RESET password_encryption`,
      `CREATE ROLE noexp_${s} LOGIN PASSWORD 'noexp-password-1'`,
      `ALTER ROLE cdb_${s} SET log_statement = 'ddl'`,
      `ALTER SYSTEM SET log_statement = 'all'`,
      `ALTER SYSTEM SET log_min_duration_statement = 0`,
      `ALTER SYSTEM SET idle_in_transaction_session_timeout = 0`,
      `ALTER SYSTEM SET password_encryption = 'md5'`,
      `ALTER ROLE ${app} CONNECTION LIMIT -1`,
    );
    // Lines that never match a real client (TEST-NET addresses), so they change nothing but the report.
    const hba = join(server.dataDir, 'pg_hba.conf');
    appendFileSync(
      hba,
      `host all nobody_${s} 192.0.2.1/32 trust\nhost all nobody_${s} 192.0.2.2/32 password\nhost all nobody_${s} 192.0.2.3/32 md5\n`,
    );
    await asSuper('postgres', 'SELECT pg_reload_conf()');
    try {
      const { code, report } = await audit('superuser', ['public.orders', 'public.customers', 'public.missing']);
      const sev = (check: string, subject: string) => find(report, check, subject).map((f) => f.severity);
      expect(sev('superuser', `su_${s}`)).toEqual(['critical']);
      expect(sev('privileged-role', `cdb_${s}`)).toEqual(['medium']);
      expect(find(report, 'privileged-role', `cdb_${s}`)[0]?.fix).toBe(`ALTER ROLE cdb_${s} NOCREATEDB`);
      expect(sev('privileged-role', `brl_${s}`)).toEqual(['medium']);
      expect(sev('md5-password', `md5_${s}`)).toEqual(['high']);
      expect(sev('password-expiry', `noexp_${s}`)).toEqual(['medium']);
      expect(sev('password-expiry', `cdb_${s}`)).toEqual([]);
      expect(sev('statement-logging', 'log_statement')).toEqual(['high']);
      expect(sev('statement-logging', 'log_min_duration_statement')).toEqual(['medium']);
      expect(find(report, 'statement-logging').some((f) => f.subject.startsWith(`cdb_${s} in`))).toBe(true);
      expect(sev('idle-timeout', 'idle_in_transaction_session_timeout')).toEqual(['low']);
      expect(sev('password-encryption', 'password_encryption')).toEqual(['high']);
      expect(sev('row-level-security', 'public.customers')).toEqual(['high']);
      expect(sev('row-level-security', 'public.orders')).toEqual([]);
      expect(sev('row-level-security', 'public.missing')).toEqual(['low']);
      // The guide's steps 4, 5 and 7, and pgrotate's own login that nothing rotates.
      expect(sev('connection-logging', 'log_connections')).toEqual(['medium']);
      expect(sev('connection-logging', 'log_disconnections')).toEqual(['medium']);
      expect(sev('pgaudit', 'shared_preload_libraries')).toEqual(['medium']);
      expect(sev('password-policy', 'shared_preload_libraries')).toEqual(['low']);
      expect(sev('connection-limit', app)).toEqual(['low']);
      expect(find(report, 'connection-limit', app)[0]?.message).toMatch(/max_connections = \d+/);
      expect(sev('own-login', fx.rotator)).toEqual(['medium']);
      // Audited as the superuser here: the rotator is only the state login, postgres the admin login.
      expect(find(report, 'own-login', fx.rotator)[0]?.message).toMatch(/pgrotate's state login is not rotated/);
      expect(find(report, 'own-login', 'postgres')[0]?.message).toMatch(/pgrotate's admin login is not rotated/);
      const hbaFindings = find(report, 'hba-rules').filter((f) => f.subject.includes(`nobody_${s}`));
      expect(hbaFindings.map((f) => f.severity).sort()).toEqual(['critical', 'high', 'medium']);
      for (const f of report.findings) {
        expect(f.fix.length).toBeGreaterThan(0);
        expect(f.fix).not.toContain('\n');
      }
      // The managed role stays clean but for its removed connection limit: its password is SCRAM and pgrotate rotates it.
      expect(report.findings.filter((f) => f.subject === app).map((f) => f.check)).toEqual(['connection-limit']);
      expect(report.counts.critical).toBeGreaterThanOrEqual(2);
      expect(code).toBe(1);
      expect((await audit('superuser', ['public.orders'], ['--fail-on', 'critical'])).code).toBe(1);

      // A non-superuser admin still sees role attributes, but says what it could not read.
      const limited = await audit('rotator', ['public.customers']);
      expect(find(limited.report, 'superuser', `su_${s}`)).toHaveLength(1);
      expect(find(limited.report, 'md5-password')).toEqual([]);
      expect(limited.report.notChecked.map((n) => n.check).sort()).toEqual([
        'hba-rules',
        'md5-password',
        'password-policy',
        'pgaudit',
      ]);

      // Text output: severity, subject and the fix line; no password from the setup.
      const { path, env } = auditConfig('superuser', ['public.customers']);
      const text = await fx.cli(['--config', path, 'audit', 'main'], env);
      expect(text.code).toBe(1);
      expect(text.stdout).toMatch(new RegExp(`\\[CRITICAL\\] superuser su_${s}: `));
      expect(text.stdout).toContain(`fix: ALTER ROLE su_${s} NOSUPERUSER`);
      expect(text.stdout).toMatch(/Login roles:/);
      for (const secret of ['su-password-1', 'noexp-password-1', server.superPassword, fx.rotatorPassword]) {
        expect(text.stdout + text.stderr).not.toContain(secret);
      }
    } finally {
      await asSuper(
        'postgres',
        ...['log_statement', 'log_min_duration_statement', 'password_encryption'].map((g) => `ALTER SYSTEM RESET ${g}`),
        `ALTER SYSTEM SET idle_in_transaction_session_timeout = '5min'`,
        `ALTER ROLE ${app} CONNECTION LIMIT 20`,
        'SELECT pg_reload_conf()',
      );
      writeFileSync(
        hba,
        readFileSync(hba, 'utf8')
          .split('\n')
          .filter((l) => !l.includes(`nobody_${s}`))
          .join('\n'),
      );
    }
  });

  it('an unknown target or severity is a usage error', async () => {
    const { path, env } = auditConfig('rotator', []);
    expect((await fx.cli(['--config', path, 'audit', 'nope'], env)).code).toBe(2);
    expect((await fx.cli(['--config', path, 'audit', 'main', '--fail-on', 'severe'], env)).code).toBe(2);
  });
});
