import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { authFileEntry } from '../../src/core/pgbouncer/auth-file.js';
import { VALUNTIL_AUTH_QUERY } from '../../src/services/audit/checks/pgbouncer-auth-query.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { startPgbouncer, type PgbouncerServer } from '../support/pgbouncer-server.js';
import { pgServer } from '../support/provided.js';

// PgBouncer kept in step (issue 27.5), against Debian's pgbouncer in front of PostgreSQL 15:
// the auth_file gets the rotated role's verifier and a RELOAD, the new credential is proven
// through PgBouncer, a rollback restores the line, an unreachable instance stops the rotation
// before anything changes, and an expired previous login stops working through PgBouncer in
// both auth modes (auth_file and auth_query).

const SCRAM = /^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/;

let fx: PgFixture;
let fileBouncer: PgbouncerServer;
let queryBouncer: PgbouncerServer;
let honouringBouncer: PgbouncerServer;
let otherBouncer: PgbouncerServer;

beforeAll(async () => {
  fx = await createPgFixture(pgServer('pg15'));
  [fileBouncer, otherBouncer, queryBouncer, honouringBouncer] = await Promise.all([
    startPgbouncer(fx.server, { mode: 'file' }),
    startPgbouncer(fx.server, { mode: 'file' }),
    startPgbouncer(fx.server, { mode: 'query' }),
    startPgbouncer(fx.server, { mode: 'query', authQuery: VALUNTIL_AUTH_QUERY }),
  ]);
});
afterAll(async () => {
  await Promise.all([fileBouncer?.stop(), otherBouncer?.stop(), queryBouncer?.stop(), honouringBouncer?.stop()]);
  await fx?.cleanup();
});

/** The target's `pgbouncer` entry for a test PgBouncer (auth_file mode unless `authFile: null`). */
function entry(b: PgbouncerServer, over: { authFile?: string | null; port?: number; password?: string } = {}) {
  const authFile = over.authFile === undefined ? b.authFile : over.authFile;
  return {
    ...(authFile === null ? {} : { authFile }),
    host: b.host,
    port: over.port ?? b.port,
    admin: { username: b.adminUser, password: over.password ?? 'env:PGB_ADMIN_PW' },
  };
}

async function alternatingPair(tag: string): Promise<[string, string]> {
  const owner = `own_${tag}_${fx.suffix}`;
  const c = await fx.rotatorClient('postgres');
  await c.query(`CREATE ROLE ${owner} NOLOGIN`);
  await c.end();
  return [
    await fx.createRole(`${tag}_a_${fx.suffix}`, { inRole: owner }),
    await fx.createRole(`${tag}_b_${fx.suffix}`, { inRole: owner }),
  ];
}

function configFor(b: PgbouncerServer, pgbouncer: unknown[], account: Record<string, unknown>) {
  const { path, env } = fx.writeConfig({ accounts: [account], targetExtra: { pgbouncer } });
  return { path, env: { ...env, PGB_ADMIN_PW: b.adminPassword } };
}

async function validUntil(role: string): Promise<Date | null> {
  const c = await fx.superClient();
  try {
    const r = await c.query<{ v: Date | null }>('SELECT rolvaliduntil AS v FROM pg_roles WHERE rolname = $1', [role]);
    return r.rows[0]?.v ?? null;
  } finally {
    await c.end();
  }
}

async function waitUntil(at: Date | null): Promise<void> {
  const ms = (at?.getTime() ?? Date.now()) - Date.now() + 150;
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

describe('PgBouncer with an auth_file', () => {
  it('an application loop through PgBouncer sees 0 failed logins over 20 alternating rotations; the file holds verifiers only, every other line kept; the expired previous login stops working through PgBouncer', async () => {
    const [a, b] = await alternatingPair('loop');
    const secret = `pg/loop_${fx.suffix}`;
    const account = {
      name: 'loop',
      target: 'main',
      strategy: 'alternating',
      roles: [a, b],
      gracePeriod: '1h',
      provider: 'local',
      secret,
    };
    const { path, env } = configFor(fileBouncer, [entry(fileBouncer)], account);
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    const first = await fx.cli(['--config', path, 'rotate', 'loop'], env);
    expect(first.code, first.stderr).toBe(0);

    const seen = new Set<string>();
    let ok = 0;
    let failed = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        const v = await provider.getCurrent(secret);
        if (!v) continue;
        seen.add(v.password);
        if (await fileBouncer.canLogin(v.username, v.password, fx.targetDb)) ok++;
        else failed++;
      }
    })();
    const outputs: string[] = [first.stdout, first.stderr];
    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      const r = await fx.cli(['--config', path, 'rotate', 'loop'], env);
      outputs.push(r.stdout, r.stderr);
      expect(r.code, r.stderr).toBe(0);
    }
    const rotationsMs = Date.now() - started;
    running = false;
    await loop;
    console.log(`20 rotations through PgBouncer: ${rotationsMs} ms; application logins ok=${ok} failed=${failed}`);
    expect(failed).toBe(0);
    expect(ok).toBeGreaterThan(20);

    // Verifiers only, the same ones PostgreSQL holds; the admin's, the comment and the other user kept.
    const text = readFileSync(fileBouncer.authFile, 'utf8');
    expect(text).toContain('; managed partly by pgrotate\n');
    expect(text).toContain(`"${fileBouncer.adminUser}" "${fileBouncer.adminPassword}"`);
    expect(text).toContain('"someone_else" "md5deadbeef"');
    const su = await fx.superClient();
    const stored = await su.query<{ rolname: string; rolpassword: string }>(
      'SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1)',
      [[a, b]],
    );
    await su.end();
    for (const row of stored.rows) {
      expect(authFileEntry(text, row.rolname)).toMatch(SCRAM);
      expect(authFileEntry(text, row.rolname)).toBe(row.rolpassword);
    }
    // No plaintext in the file, pgbouncer's log or pgrotate's output.
    const current = await provider.getCurrent(secret);
    const previous = await provider.getPrevious(secret);
    for (const v of [current, previous]) if (v) seen.add(v.password);
    const haystacks = [text, readFileSync(fileBouncer.logFile, 'utf8'), outputs.join('\n')];
    for (const pw of seen) for (const h of haystacks) expect(h.includes(pw)).toBe(false);

    // A short grace: the previous role expires; PgBouncer would still let it in (file line and
    // a pooled server connection) until pgrotate retires it.
    const short = configFor(fileBouncer, [entry(fileBouncer)], { ...account, gracePeriod: '1s' });
    expect((await fx.cli(['--config', short.path, 'rotate', 'loop'], short.env)).code).toBe(0);
    const old = (await provider.getPrevious(secret)) as { username: string; password: string };
    expect(await fileBouncer.canLogin(old.username, old.password, fx.targetDb)).toBe(true);
    await waitUntil(await validUntil(old.username));
    expect(await fx.canLogin(old.username, old.password)).toBe(false);
    expect(await fileBouncer.canLogin(old.username, old.password, fx.targetDb)).toBe(true);
    const due = await fx.cli(['--config', short.path, 'run-due'], short.env);
    expect(due.code, due.stderr).toBe(0);
    expect(await fileBouncer.canLogin(old.username, old.password, fx.targetDb)).toBe(false);
    expect(authFileEntry(readFileSync(fileBouncer.authFile, 'utf8'), old.username)).toBeNull();
    const now = (await provider.getCurrent(secret)) as { username: string; password: string };
    expect(await fileBouncer.canLogin(now.username, now.password, fx.targetDb)).toBe(true);
  }, 90_000);

  it('a verify refused through one PgBouncer rolls back: the line is restored and the previous credential keeps logging in through PgBouncer', async () => {
    const role = await fx.createRole(`rb_${fx.suffix}`, { password: 'rb-initial-password-1' });
    const secret = `pg/rb_${fx.suffix}`;
    const account = { name: 'rb', target: 'main', role, provider: 'local', secret };
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    const good = configFor(fileBouncer, [entry(fileBouncer)], account);
    expect((await fx.cli(['--config', good.path, 'rotate', 'rb'], good.env)).code).toBe(0);
    const v1 = (await provider.getCurrent(secret)) as { password: string };
    expect(await fileBouncer.canLogin(role, v1.password, fx.targetDb)).toBe(true);
    const lineBefore = authFileEntry(readFileSync(fileBouncer.authFile, 'utf8'), role);

    // A second instance whose listed file is not the one it reads: it refuses the new password.
    const decoy = join(fx.dir, 'decoy-userlist.txt');
    writeFileSync(decoy, '');
    const bad = configFor(
      fileBouncer,
      [entry(fileBouncer), entry(otherBouncer, { authFile: decoy, password: otherBouncer.adminPassword })],
      account,
    );
    const r = await fx.cli(['--config', bad.path, 'rotate', 'rb'], bad.env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`through PgBouncer 127.0.0.1:${otherBouncer.port} of target main`);
    expect(r.stderr).toMatch(/previous credential was restored/);
    expect((await provider.getCurrent(secret))?.password).toBe(v1.password);
    expect(await fx.canLogin(role, v1.password)).toBe(true);
    expect(await fileBouncer.canLogin(role, v1.password, fx.targetDb)).toBe(true);
    const lineAfter = authFileEntry(readFileSync(fileBouncer.authFile, 'utf8'), role);
    expect(lineAfter).toMatch(SCRAM);
    // A fresh verifier of the previous password (new salt), not the rejected one.
    expect(lineAfter).not.toBe(lineBefore);
  }, 30_000);

  it('a kill between the auth_file write and RELOAD resumes: the rerun finishes and logs in through PgBouncer', async () => {
    const [a, b] = await alternatingPair('crash');
    const secret = `pg/crash_${fx.suffix}`;
    const account = {
      name: 'crash',
      target: 'main',
      strategy: 'alternating',
      roles: [a, b],
      gracePeriod: '1h',
      provider: 'local',
      secret,
    };
    const { path, env } = configFor(fileBouncer, [entry(fileBouncer)], account);
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    expect((await fx.cli(['--config', path, 'rotate', 'crash'], env)).code).toBe(0);
    const crashed = await fx.cliProcess(['--config', path, 'rotate', 'crash'], {
      ...env,
      PGROTATE_FAILPOINT: 'after-pgbouncer-file',
    });
    expect(crashed.signal).toBe('SIGKILL');
    const v1 = (await provider.getCurrent(secret)) as { username: string; password: string };
    expect(v1.username).toBe(a);
    // I1 through PgBouncer: what applications read still logs in there.
    expect(await fileBouncer.canLogin(v1.username, v1.password, fx.targetDb)).toBe(true);
    const rerun = await fx.cli(['--config', path, 'rotate', 'crash'], env);
    expect(rerun.code, rerun.stderr).toBe(0);
    const v2 = (await provider.getCurrent(secret)) as { username: string; password: string };
    expect(v2.username).toBe(b);
    expect(await fileBouncer.canLogin(v2.username, v2.password, fx.targetDb)).toBe(true);
    expect(await fileBouncer.canLogin(v1.username, v1.password, fx.targetDb)).toBe(true);
  }, 30_000);
});

describe('PgBouncer bad input: refused in pre-flight, naming the target and the instance, nothing changed', () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    [
      'a missing auth_file',
      () => entry(fileBouncer, { authFile: join(fileBouncer.dir, 'nope.txt') }),
      /auth_file .*nope\.txt cannot be read and written/,
    ],
    ['an unreachable admin console', () => entry(fileBouncer, { port: 1 }), /cannot connect to the admin console/],
    [
      'a wrong admin password',
      () => entry(fileBouncer, { password: 'wrong-admin-password' }),
      /cannot connect to the admin console as pgb_admin/,
    ],
  ];
  it.each(cases)('%s', async (_what, instance, message) => {
    const tag = `bad${Math.random().toString(36).slice(2, 8)}`;
    const role = await fx.createRole(`${tag}_${fx.suffix}`, { password: `${tag}-initial-password-1` });
    const { path, env } = configFor(fileBouncer, [instance()], {
      name: tag,
      target: 'main',
      role,
      provider: 'local',
      secret: `pg/${tag}`,
    });
    const before = readFileSync(fileBouncer.authFile, 'utf8');
    const r = await fx.cli(['--config', path, 'rotate', tag], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain(`account ${tag}: PgBouncer 127.0.0.1:`);
    expect(r.stderr).toContain('of target main');
    expect(r.stderr).not.toContain('wrong-admin-password');
    expect(await fx.canLogin(role, `${tag}-initial-password-1`)).toBe(true);
    expect(await new FileProvider({ name: 'local', path: fx.secretsFile }).getCurrent(`pg/${tag}`)).toBeNull();
    expect(readFileSync(fileBouncer.authFile, 'utf8')).toBe(before);
  });
});

describe('PgBouncer with auth_query', () => {
  it('audit flags an auth_query that ignores VALID UNTIL, not one that honours it', async () => {
    const { path, env } = configFor(
      queryBouncer,
      [
        entry(queryBouncer, { authFile: null }),
        entry(honouringBouncer, { authFile: null, password: honouringBouncer.adminPassword }),
      ],
      {
        name: 'aq',
        target: 'main',
        role: 'postgres',
        provider: 'local',
        secret: 'pg/unused',
        allowSuperuser: true,
      },
    );
    const r = await fx.cli(['--config', path, 'audit', 'main', '--json'], env);
    expect(r.stdout, r.stderr).not.toBe('');
    const report = JSON.parse(r.stdout) as { findings: Array<{ check: string; subject: string; fix: string }> };
    const found = report.findings.filter((f) => f.check === 'pgbouncer-auth-query');
    expect(found.map((f) => f.subject)).toEqual([`127.0.0.1:${queryBouncer.port}`]);
    expect(found[0]?.fix).toContain('valuntil IS NULL OR valuntil > now()');
  }, 30_000);

  it.each([
    ['the common query (ignores valuntil)', () => queryBouncer, true],
    ['a query that honours valuntil', () => honouringBouncer, false],
  ])(
    '%s: the expired previous role stops logging in through PgBouncer once pgrotate closes its pooled connections',
    async (_what, bouncer, letInAfterExpiry) => {
      const pgb = bouncer();
      const tag = pgb === queryBouncer ? 'aqc' : 'aqh';
      const [a, b] = await alternatingPair(tag);
      const secret = `pg/${tag}_${fx.suffix}`;
      const account = {
        name: tag,
        target: 'main',
        strategy: 'alternating',
        roles: [a, b],
        gracePeriod: '1s',
        provider: 'local',
        secret,
      };
      const { path, env } = configFor(pgb, [entry(pgb, { authFile: null })], account);
      const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
      expect((await fx.cli(['--config', path, 'rotate', tag], env)).code).toBe(0);
      const old = (await provider.getCurrent(secret)) as { username: string; password: string };
      // A pooled server connection of the role applications use now.
      expect(await pgb.canLogin(old.username, old.password, fx.targetDb)).toBe(true);
      const r = await fx.cli(['--config', path, 'rotate', tag], env);
      expect(r.code, r.stderr).toBe(0);
      await waitUntil(await validUntil(old.username));
      expect(await fx.canLogin(old.username, old.password)).toBe(false);
      // The common query hands PgBouncer the expired login's verifier and PgBouncer reuses the
      // pooled server connection: it still works through it. One that honours valuntil refuses it.
      expect(await pgb.canLogin(old.username, old.password, fx.targetDb)).toBe(letInAfterExpiry);
      const due = await fx.cli(['--config', path, 'run-due'], env);
      expect(due.code, due.stderr).toBe(0);
      expect(await pgb.canLogin(old.username, old.password, fx.targetDb)).toBe(false);
      const now = (await provider.getCurrent(secret)) as { username: string; password: string };
      expect(await pgb.canLogin(now.username, now.password, fx.targetDb)).toBe(true);
      const events = await fx.stateQuery<{ detail: { role: string; count: number } }>(
        `SELECT detail FROM pgrotate.audit_events WHERE account = $1 AND kind = 'pgbouncer.pooled-connections-closed'`,
        [tag],
      );
      expect(events.rows.map((e) => e.detail.role)).toEqual([old.username]);
    },
    30_000,
  );
});
