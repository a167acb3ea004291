import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { quoteIdent } from '../../src/core/pg/quote.js';
import { setHbaLine } from '../support/pg-hba.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// Issue 12 A: a single-user rotation never leaves applications without a working credential.
// What the server's answer proves is proof (a role at its connection limit); pre-flight proves
// the login path and the role's expiry before anything changes; a verify failure after ALTER
// ROLE puts the previous credential back; the SCRAM iteration count pgrotate writes is one its
// own login accepts.

interface Result {
  outcome: string;
  warnings: string[];
  error: { type: string; message: string } | null;
}

describe('login proof and pre-flight (PostgreSQL 15)', () => {
  let fx: PgFixture;
  let provider: FileProvider;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    provider = new FileProvider({ name: 'local', path: fx.secretsFile });
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  async function rolpassword(role: string): Promise<string | null> {
    const c = await fx.superClient();
    try {
      return (
        (await c.query<{ p: string | null }>('SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [role]))
          .rows[0]?.p ?? null
      );
    } finally {
      await c.end();
    }
  }

  const hba = (line: string, present: boolean) => setHbaLine(fx, line, present);

  function rotateJson(stdout: string): Result {
    return (JSON.parse(stdout) as { results: Result[] }).results[0] as Result;
  }

  it('a role at its CONNECTION LIMIT: the server accepting the password is proof; the rotation completes', async () => {
    const role = await fx.createRole(`cl_${fx.suffix}`, { password: 'cl-initial-password' });
    const su = await fx.superClient();
    await su.query(`ALTER ROLE ${quoteIdent(role)} CONNECTION LIMIT 1`);
    await su.end();
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'cl', target: 'main', role, provider: 'local', secret: 'pg/cl' }],
      defaults: { verifyAttempts: 1 },
    });
    // An application holds the one session the role may have.
    const app = new pg.Client({
      host: fx.server.host,
      port: fx.server.port,
      user: role,
      password: 'cl-initial-password',
      database: fx.targetDb,
    });
    await app.connect();
    try {
      const r = await fx.cli(['--config', path, 'rotate', 'cl', '--json'], env);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const result = rotateJson(r.stdout);
      expect(result.outcome).toBe('succeeded');
      expect(result.warnings.join('\n')).toMatch(/CONNECTION LIMIT \(1 of 1 sessions\)/);
      expect(result.warnings.join('\n')).toMatch(/accepted the new password .*\(too many connections for role/);
    } finally {
      await app.end();
    }
    const current = await provider.getCurrent('pg/cl');
    expect(await provider.getPending('pg/cl')).toBeNull();
    // With the session gone, what the provider calls current logs in, and the old one does not.
    expect(await fx.canLogin(role, current?.password as string)).toBe(true);
    expect(await fx.canLogin(role, 'cl-initial-password')).toBe(false);
    const status = JSON.parse((await fx.cli(['--config', path, 'status', '--json'], env)).stdout) as {
      accounts: Array<{ name: string; warnings: string[] }>;
    };
    expect(status.accounts.find((a) => a.name === 'cl')?.warnings.join('\n')).toMatch(/CONNECTION LIMIT/);
  });

  it('pg_hba.conf refusing the role from pgrotate’s host: refused before anything changes, naming the cause and the fix', async () => {
    const role = await fx.createRole(`hb_${fx.suffix}`, { password: 'hb-app-only-password' });
    const line = `host all ${role} 127.0.0.1/32 reject`;
    const before = await rolpassword(role);
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'hb', target: 'main', role, provider: 'local', secret: 'pg/hb' }],
    });
    await hba(line, true);
    try {
      const r = await fx.cli(['--config', path, 'rotate', 'hb'], env);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(
        new RegExp(
          `account hb: pg_hba.conf refuses a password login as role "${role}" on target main from pgrotate's host .*rejects connection.*Nothing was changed\\. Fix: add a pg_hba.conf line`,
        ),
      );
      expect(await rolpassword(role)).toBe(before);
      expect(await provider.getCurrent('pg/hb')).toBeNull();
      expect(await provider.getPending('pg/hb')).toBeNull();
      // --dry-run runs the same pre-flight.
      const dry = await fx.cli(['--config', path, 'rotate', 'hb', '--dry-run'], env);
      expect(dry.code).toBe(1);
      expect(dry.stdout).toMatch(/pg_hba.conf refuses/);
    } finally {
      await hba(line, false);
    }
    expect(await fx.canLogin(role, 'hb-app-only-password')).toBe(true);
  });

  it('pg_hba.conf trusting the role from pgrotate’s host: refused, since verify could prove nothing', async () => {
    const role = await fx.createRole(`tr_${fx.suffix}`, { password: 'tr-app-password' });
    const line = `host all ${role} 127.0.0.1/32 trust`;
    const before = await rolpassword(role);
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'tr', target: 'main', role, provider: 'local', secret: 'pg/tr' }],
    });
    await hba(line, true);
    try {
      const r = await fx.cli(['--config', path, 'rotate', 'tr'], env);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(
        /account tr: pg_hba.conf lets role "tr_\w+" on target main log in from pgrotate's host without a password \(trust\)/,
      );
      expect(await rolpassword(role)).toBe(before);
    } finally {
      await hba(line, false);
    }
  });

  it('a verify failure of any kind after ALTER ROLE puts the previous credential back at once', async () => {
    const role = await fx.createRole(`vf_${fx.suffix}`);
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'vf', target: 'main', role, provider: 'local', secret: 'pg/vf' }],
      defaults: { verifyAttempts: 1 },
    });
    expect((await fx.cli(['--config', path, 'rotate', 'vf'], env)).code).toBe(0);
    const previous = await provider.getCurrent('pg/vf');
    // Between apply and verify, pg_hba.conf starts refusing the role from this host (28000: not a
    // password refusal). Applications elsewhere would now hold a dead password unless it is restored.
    const r = await rotateWithRejectAfterApply(path, env, 'vf', role);
    expect(r.code, r.stderr).toBe(1);
    const result = rotateJson(r.stdout);
    expect(result.error?.message).toMatch(
      /account vf: the new credential of role "vf_\w+" did not log in to target main: .*rejects connection.*; the previous credential was restored/,
    );
    expect((await provider.getCurrent('pg/vf'))?.password).toBe(previous?.password);
    expect(await provider.getPending('pg/vf')).toBeNull();
    expect(await fx.canLogin(role, previous?.password as string)).toBe(true);
    // Nothing is left running: the next rotation starts afresh and succeeds.
    const again = await fx.cli(['--config', path, 'rotate', 'vf', '--json'], env);
    expect(again.code, again.stdout).toBe(0);
  });

  it('pg_hba.conf trusting the role between apply and verify: a login without a password request is no proof; the previous credential is restored', async () => {
    const role = await fx.createRole(`vt_${fx.suffix}`);
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'vt', target: 'main', role, provider: 'local', secret: 'pg/vt' }],
      defaults: { verifyAttempts: 1 },
    });
    expect((await fx.cli(['--config', path, 'rotate', 'vt'], env)).code).toBe(0);
    const previous = await provider.getCurrent('pg/vt');
    const r = await rotateWithRejectAfterApply(path, env, 'vt', role, 'trust');
    expect(r.code, r.stderr).toBe(1);
    const result = rotateJson(r.stdout);
    expect(result.error?.message).toMatch(
      /account vt: the new credential of role "vt_\w+" did not log in to target main: the server let role "vt_\w+" in without asking for a password .*proves nothing; the previous credential was restored/,
    );
    expect((await provider.getCurrent('pg/vt'))?.password).toBe(previous?.password);
    expect(await provider.getPending('pg/vt')).toBeNull();
    expect(await fx.canLogin(role, previous?.password as string)).toBe(true);
  });

  /** Run `rotate` paused after apply; once `role`'s password changes, pg_hba.conf starts rejecting (or trusting) it. */
  async function rotateWithRejectAfterApply(
    path: string,
    env: NodeJS.ProcessEnv,
    account: string,
    role: string,
    method: 'reject' | 'trust' = 'reject',
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const before = await rolpassword(role);
    const line = `host all ${role} 127.0.0.1/32 ${method}`;
    const child = fx.cliProcess(['--config', path, 'rotate', account, '--json'], {
      ...env,
      PGROTATE_FAILPOINT: 'pause-after-apply:4000',
    });
    try {
      const deadline = Date.now() + 30_000;
      while ((await rolpassword(role)) === before) {
        if (Date.now() > deadline) throw new Error('the rotation never reached apply');
        await new Promise((r) => setTimeout(r, 50));
      }
      await hba(line, true);
      return await child;
    } finally {
      await hba(line, false);
    }
  }

  it('alternating: a verify refusal of the inactive role removes its new password; the pair stays on the other role', async () => {
    const a = await fx.createRole(`alt_a_${fx.suffix}`);
    const b = await fx.createRole(`alt_b_${fx.suffix}`);
    const { path, env } = fx.writeConfig({
      accounts: [
        {
          name: 'altvf',
          target: 'main',
          strategy: 'alternating',
          roles: [a, b],
          gracePeriod: '1h',
          provider: 'local',
          secret: 'pg/altvf',
        },
      ],
      defaults: { verifyAttempts: 1 },
    });
    expect((await fx.cli(['--config', path, 'rotate', 'altvf'], env)).code).toBe(0);
    const current = await provider.getCurrent('pg/altvf');
    const inactive = current?.username === a ? b : a;
    expect(await rolpassword(inactive)).toBeNull();
    const r = await rotateWithRejectAfterApply(path, env, 'altvf', inactive);
    expect(r.code, r.stderr).toBe(1);
    expect(rotateJson(r.stdout).error?.message).toMatch(
      new RegExp(
        `account altvf: the new credential of role "${inactive}" did not log in to target main: .*; the new password was removed from inactive role "${inactive}" \\(applications keep using role "${current?.username}"\\)`,
      ),
    );
    // No live password that nobody holds (I1), nothing pending, applications untouched.
    expect(await rolpassword(inactive)).toBeNull();
    expect(await provider.getPending('pg/altvf')).toBeNull();
    expect((await provider.getCurrent('pg/altvf'))?.password).toBe(current?.password);
    expect(await fx.canLogin(current?.username as string, current?.password as string)).toBe(true);
    // The next rotation is not stopped by debris.
    const again = await fx.cli(['--config', path, 'rotate', 'altvf', '--json'], env);
    expect(again.code, again.stdout).toBe(0);
    const next = await provider.getCurrent('pg/altvf');
    expect(next?.username).toBe(inactive);
    expect(await fx.canLogin(inactive, next?.password as string)).toBe(true);
  });

  it('a first rotation refused at verify keeps its pending password (the only one that logs in); the next rotation promotes it and goes on', async () => {
    const role = await fx.createRole(`first_${fx.suffix}`, { password: 'unmanaged-initial-password-9' });
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'firstvf', target: 'main', role, provider: 'local', secret: 'pg/firstvf' }],
      defaults: { verifyAttempts: 1 },
    });
    const r = await rotateWithRejectAfterApply(path, env, 'firstvf', role);
    expect(r.code, r.stderr).toBe(1);
    expect(rotateJson(r.stdout).error?.message).toMatch(
      /account firstvf: .*did not log in.*; the pending credential is kept in the provider/,
    );
    const pending = await provider.getPending('pg/firstvf');
    expect(pending).not.toBeNull();
    expect(await provider.getCurrent('pg/firstvf')).toBeNull();
    expect(await fx.canLogin(role, pending?.password as string)).toBe(true);
    const again = await fx.cli(['--config', path, 'rotate', 'firstvf', '--json'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(rotateJson(again.stdout).warnings.join('\n')).toMatch(
      /pending credential of failed rotation \S+ was the only password role "first_\w+" logged in with; it was promoted/,
    );
    for (const out of [again.stdout, again.stderr, r.stdout, r.stderr])
      expect(out).not.toContain(pending?.password as string);
    expect((await provider.getPrevious('pg/firstvf'))?.password).toBe(pending?.password);
    const now = await provider.getCurrent('pg/firstvf');
    expect(now?.rotationId).not.toBe(pending?.rotationId);
    expect(await fx.canLogin(role, now?.password as string)).toBe(true);
    expect(await provider.getPending('pg/firstvf')).toBeNull();
    const history = await fx.cli(['--config', path, 'history', 'firstvf', '--json'], env);
    expect(history.stdout).toContain('rotation.stale-pending-promoted');
  });

  it('scramIterations above node-postgres’s default cap: pgrotate’s own login verifies it', async () => {
    const role = await fx.createRole(`it_${fx.suffix}`);
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'it', target: 'main', role, provider: 'local', secret: 'pg/it' }],
      defaults: { scramIterations: 200_000 },
    });
    const r = await fx.cli(['--config', path, 'rotate', 'it'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await rolpassword(role)).toMatch(/^SCRAM-SHA-256\$200000:/);
    expect((await fx.cli(['--config', path, 'verify', 'it'], env)).code).toBe(0);
    const current = await provider.getCurrent('pg/it');
    const c = new pg.Client({
      host: fx.server.host,
      port: fx.server.port,
      user: role,
      password: current?.password,
      database: fx.targetDb,
      scramMaxIterations: 1_000_000,
    } as pg.ClientConfig);
    await c.connect();
    await c.end();
  });

  it('an expired role: refused with its expiry named, nothing changed', async () => {
    const role = await fx.createRole(`ex_${fx.suffix}`, { password: 'ex-initial-password' });
    const c = await fx.rotatorClient('postgres');
    await c.query(`ALTER ROLE ${quoteIdent(role)} VALID UNTIL '2000-01-01 00:00:00+00'`);
    await c.end();
    const before = await rolpassword(role);
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'ex', target: 'main', role, provider: 'local', secret: 'pg/ex' }],
    });
    const r = await fx.cli(['--config', path, 'rotate', 'ex'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /account ex: role "ex_\w+" on target main expired at 2000-01-01T00:00:00.000Z \(VALID UNTIL\).*renewValidUntil/,
    );
    expect(await rolpassword(role)).toBe(before);
    expect(await provider.getPending('pg/ex')).toBeNull();
    expect(await provider.getCurrent('pg/ex')).toBeNull();
  });

  it('an expired role with renewValidUntil: the new password and a new expiry in one statement', async () => {
    const role = await fx.createRole(`rn_${fx.suffix}`, { password: 'rn-initial-password' });
    const c = await fx.rotatorClient('postgres');
    await c.query(`ALTER ROLE ${quoteIdent(role)} VALID UNTIL '2000-01-01 00:00:00+00'`);
    await c.end();
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'rn', target: 'main', role, provider: 'local', secret: 'pg/rn', renewValidUntil: '120d' }],
    });
    const t0 = Date.now();
    const r = await fx.cli(['--config', path, 'rotate', 'rn', '--json'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(rotateJson(r.stdout).warnings).toEqual([]);
    const su = await fx.superClient();
    const until = (await su.query<{ v: Date }>('SELECT rolvaliduntil AS v FROM pg_roles WHERE rolname = $1', [role]))
      .rows[0]?.v as Date;
    await su.end();
    expect(Math.abs(until.getTime() - (t0 + 120 * 86_400_000))).toBeLessThan(60_000);
    expect(await fx.canLogin(role, (await provider.getCurrent('pg/rn'))?.password as string)).toBe(true);
  });

  it('a VALID UNTIL before the next due rotation is reported in the result, the audit trail and status', async () => {
    const role = await fx.createRole(`vu_${fx.suffix}`);
    const until = new Date(Date.now() + 2 * 86_400_000);
    const c = await fx.rotatorClient('postgres');
    await c.query(`ALTER ROLE ${quoteIdent(role)} VALID UNTIL '${until.toISOString()}'`);
    await c.end();
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'vu', target: 'main', role, provider: 'local', secret: 'pg/vu' }],
    });
    const r = await fx.cli(['--config', path, 'rotate', 'vu', '--json'], env);
    expect(r.code, r.stdout).toBe(0);
    const warning = new RegExp(
      `${role}\\\\?" has VALID UNTIL ${until.toISOString().slice(0, 19)}.*before the next due rotation`,
    );
    expect(rotateJson(r.stdout).warnings.join('\n')).toMatch(warning);
    const status = await fx.cli(['--config', path, 'status'], env);
    expect(status.stdout).toMatch(/warning: account vu: role .* has VALID UNTIL/);
    const history = await fx.cli(['--config', path, 'history', 'vu', '--json'], env);
    expect(history.stdout).toMatch(warning);
    // Rotating without the warning's cause clears it.
    const c2 = await fx.rotatorClient('postgres');
    await c2.query(`ALTER ROLE ${quoteIdent(role)} VALID UNTIL 'infinity'`);
    await c2.end();
    expect((await fx.cli(['--config', path, 'rotate', 'vu'], env)).code).toBe(0);
    const after = JSON.parse((await fx.cli(['--config', path, 'status', '--json'], env)).stdout) as {
      accounts: Array<{ name: string; warnings: string[] }>;
    };
    expect(after.accounts.find((a) => a.name === 'vu')?.warnings).toEqual([]);
  });

  it('renewValidUntil not longer than the rotation interval: refused at load, naming the key', async () => {
    const { path, env } = fx.writeConfig({
      accounts: [
        {
          name: 'bad',
          target: 'main',
          role: 'whoever',
          provider: 'local',
          secret: 'pg/bad',
          renewValidUntil: '30d',
          schedule: { every: '90d' },
        },
      ],
    });
    const r = await fx.cli(['--config', path, 'status'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /accounts\[0\]\.renewValidUntil.*renewValidUntil must be longer than the rotation interval/,
    );
  });
});
