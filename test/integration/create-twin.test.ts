import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { FileProvider } from '../../providers/file/file-provider.js';
import { quoteIdent } from '../../src/core/pg/quote.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { PG_VERSIONS } from '../support/pg-versions.js';
import { pgServer } from '../support/provided.js';

// createTwin end to end through the CLI on every tested PostgreSQL version: the second login of
// an alternating pair is created as a copy of the first (memberships with their 16+ options,
// attributes, settings), refused when the first holds objects or grants, and checked for drift
// on every later rotation and by `audit`.

interface Membership {
  group: string;
  admin: boolean;
  inherit: boolean | null;
  set: boolean | null;
}

describe.each(PG_VERSIONS)('createTwin on %s', (serverName) => {
  let fx: PgFixture;
  let v16: boolean;
  const dropLater: string[] = [];
  beforeAll(async () => {
    fx = await createPgFixture(pgServer(serverName));
    const c = await fx.superClient();
    v16 =
      Number((await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v) >= 160000;
    await c.end();
  });
  afterAll(async () => {
    if (fx) {
      const c = await fx.superClient();
      for (const r of dropLater.reverse()) {
        await c.query(`DROP OWNED BY ${quoteIdent(r)}`).catch(() => undefined);
        await c.query(`DROP ROLE IF EXISTS ${quoteIdent(r)}`).catch(() => undefined);
      }
      await c.end();
    }
    await fx?.cleanup();
  });

  /** Run statements as `who` (the rotator unless 'super') in `db` (postgres by default). */
  const sql = async (who: 'super' | 'rotator', statements: string[], db = 'postgres') => {
    const c = who === 'super' ? await fx.superClient(db) : await fx.rotatorClient(db);
    try {
      for (const s of statements) await c.query(s);
    } finally {
      await c.end();
    }
  };
  const query = async <R extends pg.QueryResultRow>(text: string, values: unknown[] = []) => {
    const c = await fx.superClient();
    try {
      return (await c.query<R>(text, values)).rows;
    } finally {
      await c.end();
    }
  };
  const memberships = async (role: string) =>
    (
      await query<{ m: Membership[] | null }>(
        `SELECT json_agg(json_build_object('group', g.rolname, 'admin', am.admin_option,
                  'inherit', (to_jsonb(am) ->> 'inherit_option')::boolean, 'set', (to_jsonb(am) ->> 'set_option')::boolean)
                  ORDER BY g.rolname) AS m
           FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles r ON r.oid = am.member
          WHERE r.rolname = $1`,
        [role],
      )
    )[0]?.m ?? [];
  const settings = async (role: string) =>
    (
      await query<{ db: string | null; cfg: string[] }>(
        `SELECT d.datname AS db, s.setconfig AS cfg FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
           LEFT JOIN pg_database d ON d.oid = s.setdatabase WHERE r.rolname = $1 ORDER BY d.datname NULLS FIRST`,
        [role],
      )
    ).map((r) => ({ db: r.db, cfg: [...r.cfg].sort() }));
  const attrs = async (role: string) =>
    (
      await query<{
        rolsuper: boolean;
        rolinherit: boolean;
        rolbypassrls: boolean;
        rolconnlimit: number;
        rolcanlogin: boolean;
      }>('SELECT rolsuper, rolinherit, rolbypassrls, rolconnlimit, rolcanlogin FROM pg_roles WHERE rolname = $1', [
        role,
      ])
    )[0];
  const exists = async (role: string) => (await query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).length > 0;
  const twinAccount = (name: string, roles: [string, string], extra: Record<string, unknown> = {}) => ({
    name,
    target: 'main',
    strategy: 'alternating',
    roles,
    createTwin: true,
    gracePeriod: '1h',
    provider: 'local',
    secret: `pg/${name}`,
    ...extra,
  });
  const results = (stdout: string) =>
    (JSON.parse(stdout) as { results: Array<{ outcome: string; role: string; warnings: string[] }> }).results;

  it('creates the twin as a copy (memberships with options on 16+, attributes, settings), with no password until its turn; no drift warning', async () => {
    const s = fx.suffix;
    const [g1, g2, first, twin] = [`tw_g1_${s}`, `tw_g2_${s}`, `tw_first_${s}`, `tw_twin_${s}`];
    dropLater.push(g1, g2, twin);
    // Groups made by the rotator, so it holds ADMIN OPTION on them on 16+.
    await sql('rotator', [`CREATE ROLE ${g1} NOLOGIN`, `CREATE ROLE ${g2} NOLOGIN`]);
    await fx.createRole(first, { password: 'tw-initial-password-1' });
    await sql('rotator', [
      `ALTER ROLE ${first} NOINHERIT CONNECTION LIMIT 7`,
      `GRANT ${g1} TO ${first}`,
      v16
        ? `GRANT ${g2} TO ${first} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE`
        : `GRANT ${g2} TO ${first} WITH ADMIN OPTION`,
      `ALTER ROLE ${first} SET work_mem = '8MB'`,
      `ALTER ROLE ${first} SET search_path = "$user", public, "odd, schema"`,
      `ALTER ROLE ${first} IN DATABASE ${quoteIdent(fx.targetDb)} SET statement_timeout = '5s'`,
    ]);
    const { path, env } = fx.writeConfig({ accounts: [twinAccount('tw', [first, twin])] });
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });

    const dry = await fx.cli(['--config', path, 'rotate', 'tw', '--dry-run', '--json'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(results(dry.stdout)[0]?.warnings.join(' ')).toContain(`role "${twin}" would be created as a twin`);
    expect(await exists(twin)).toBe(false);

    const r1 = await fx.cli(['--config', path, 'rotate', 'tw', '--json'], env);
    expect(r1.code, r1.stderr).toBe(0);
    expect(results(r1.stdout)[0]?.warnings).toEqual([]);
    expect(await attrs(twin)).toEqual({ ...(await attrs(first)), rolinherit: false, rolconnlimit: 7 });
    expect(await attrs(twin)).toMatchObject({ rolsuper: false, rolbypassrls: false, rolcanlogin: true });
    const m = await memberships(twin);
    expect(m).toEqual(await memberships(first));
    expect(m.find((x) => x.group === g2)).toEqual({
      group: g2,
      admin: true,
      inherit: v16 ? false : null,
      set: v16 ? false : null,
    });
    expect(await settings(twin)).toEqual(await settings(first));
    expect((await settings(twin)).length).toBe(2);
    // The first rotation set the first role; the twin has no password at all until its turn (I1).
    expect((await provider.getCurrent('pg/tw'))?.username).toBe(first);
    expect(
      (await query<{ p: string | null }>('SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [twin]))[0]?.p,
    ).toBeNull();

    const r2 = await fx.cli(['--config', path, 'rotate', 'tw', '--json'], env);
    expect(r2.code, r2.stderr).toBe(0);
    expect(results(r2.stdout)[0]?.warnings).toEqual([]);
    const v2 = await provider.getCurrent('pg/tw');
    expect(v2?.username).toBe(twin);
    expect(await fx.canLogin(twin, v2?.password as string)).toBe(true);

    // Drift: a membership and a setting on one login only: a warning on the rotation, and an audit finding.
    await sql('rotator', [`REVOKE ${g1} FROM ${twin}`, `ALTER ROLE ${twin} SET work_mem = '16MB'`]);
    const r3 = await fx.cli(['--config', path, 'rotate', 'tw', '--json'], env);
    expect(r3.code, r3.stderr).toBe(0);
    const warning = results(r3.stdout)[0]?.warnings.join(' ') ?? '';
    expect(warning).toContain(`"${first}" and "${twin}" on target main have drifted apart`);
    // On 16+ the first role's NOINHERIT made its membership INHERIT FALSE, and the message says so.
    const onlyOnFirst = new RegExp(`membership in "${g1}"${v16 ? ' \\(INHERIT FALSE\\)' : ''} only on "${first}"`);
    expect(warning).toMatch(onlyOnFirst);
    expect(warning).toContain(`setting work_mem=16MB only on "${twin}"`);
    const audit = await fx.cli(['--config', path, 'audit', 'main', '--json'], env);
    expect([0, 1], audit.stderr).toContain(audit.code);
    const findings = (
      JSON.parse(audit.stdout) as { findings: Array<{ check: string; subject: string; message: string }> }
    ).findings;
    const drift = findings.filter((f) => f.check === 'twin-drift');
    expect(drift).toHaveLength(1);
    expect(drift[0]?.subject).toBe(`${first}/${twin}`);
    expect(drift[0]?.message).toMatch(onlyOnFirst);
  });

  it('an exact twin made before the first rotation (a crash after creating it) is taken as is; a differing one is refused, naming it', async () => {
    const s = fx.suffix;
    const [g, first, twin, first2, other] = [
      `tx_g_${s}`,
      `tx_first_${s}`,
      `tx_twin_${s}`,
      `tx_f2_${s}`,
      `tx_other_${s}`,
    ];
    dropLater.push(g);
    await sql('rotator', [`CREATE ROLE ${g} NOLOGIN`]);
    await fx.createRole(first, { inRole: g });
    await fx.createRole(twin, { inRole: g });
    await fx.createRole(first2, { inRole: g });
    await fx.createRole(other);
    const { path, env } = fx.writeConfig({
      accounts: [twinAccount('tx', [first, twin]), twinAccount('tx-other', [first2, other])],
    });
    const ok = await fx.cli(['--config', path, 'rotate', 'tx', '--json'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(results(ok.stdout)[0]?.warnings).toEqual([]);

    const bad = await fx.cli(['--config', path, 'rotate', 'tx-other'], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toContain(
      `account tx-other: role "${other}" on target main already exists and is not a twin of "${first2}" (membership in "${g}" only on "${first2}")`,
    );
    expect(await new FileProvider({ name: 'local', path: fx.secretsFile }).getCurrent('pg/tx-other')).toBeNull();
  });

  it('a crash after the twin was created and the first rotation staged resumes; the twin then takes its turn', async () => {
    const s = fx.suffix;
    const [first, twin] = [`tc_first_${s}`, `tc_twin_${s}`];
    dropLater.push(twin);
    await fx.createRole(first, { password: 'tc-initial-password-1' });
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    const { path, env } = fx.writeConfig({ accounts: [twinAccount('tc', [first, twin])] });
    const crashed = await fx.cliProcess(['--config', path, 'rotate', 'tc'], {
      ...env,
      PGROTATE_FAILPOINT: 'after-stage',
    });
    expect(crashed.signal).toBe('SIGKILL');
    expect(await exists(twin)).toBe(true);
    const rerun = await fx.cliProcess(['--config', path, 'rotate', 'tc', '--json'], env);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(results(rerun.stdout)[0]).toMatchObject({ outcome: 'succeeded', role: first });
    const next = await fx.cli(['--config', path, 'rotate', 'tc', '--json'], env);
    expect(next.code, next.stderr).toBe(0);
    expect(results(next.stdout)[0]).toMatchObject({ outcome: 'succeeded', role: twin, warnings: [] });
    const cur = await provider.getCurrent('pg/tc');
    expect(cur?.username).toBe(twin);
    expect(await fx.canLogin(twin, cur?.password as string)).toBe(true);
  });

  it('refuses when the first role owns a table or holds a direct grant, or is a superuser, with the fix; nothing created', async () => {
    const s = fx.suffix;
    const [first, twin, sup, supTwin] = [`tr_first_${s}`, `tr_twin_${s}`, `tr_sup_${s}`, `tr_suptwin_${s}`];
    await fx.createRole(first);
    await sql('super', [`CREATE TABLE tr_t_${s} (x int)`, `ALTER TABLE tr_t_${s} OWNER TO ${first}`], fx.targetDb);
    await fx.createRole(sup, { superuser: true });
    const { path, env } = fx.writeConfig({ accounts: [twinAccount('tr', [first, twin])] });
    // Only a superuser admin may rotate a superuser: the refusal must come from createTwin itself.
    const su = fx.writeConfig({
      accounts: [twinAccount('tr-sup', [sup, supTwin], { allowSuperuser: true })],
      targetExtra: { admin: { username: fx.server.superuser, password: 'env:TEST_SUPER_PASSWORD' } },
    });
    const owned = await fx.cli(['--config', path, 'rotate', 'tr'], env);
    expect(owned.code).not.toBe(0);
    expect(owned.stdout).toContain(`account tr: role "${first}" on target main owns table tr_t_${s}`);
    expect(owned.stdout).toContain('Fix: move them to a NOLOGIN group role both logins belong to');
    expect(owned.stdout).toContain(`REASSIGN OWNED BY "${first}"`);

    await sql(
      'super',
      [`ALTER TABLE tr_t_${s} OWNER TO CURRENT_USER`, `GRANT SELECT ON tr_t_${s} TO ${first}`],
      fx.targetDb,
    );
    const granted = await fx.cli(['--config', path, 'rotate', 'tr'], env);
    expect(granted.code).not.toBe(0);
    expect(granted.stdout).toContain(`role "${first}" on target main has direct grants on table tr_t_${s}`);
    expect(granted.stdout).toContain('NOLOGIN group role');
    await sql('super', [`DROP TABLE tr_t_${s}`], fx.targetDb);

    const superuser = await fx.cli(['--config', su.path, 'rotate', 'tr-sup'], {
      ...su.env,
      TEST_SUPER_PASSWORD: fx.server.superPassword,
    });
    expect(superuser.code).not.toBe(0);
    expect(superuser.stdout).toContain(
      `role "${sup}" on target main has SUPERUSER; pgrotate never creates a login with SUPERUSER`,
    );
    expect(await exists(twin)).toBe(false);
    expect(await exists(supTwin)).toBe(false);
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    expect(await provider.getCurrent('pg/tr')).toBeNull();
    expect(await provider.getPending('pg/tr')).toBeNull();
  });

  it('BYPASSRLS is copied where the admin may give it, else refused with nothing created; on 16+ a group without ADMIN OPTION names the GRANT', async () => {
    const s = fx.suffix;
    const [first, twin, g, gFirst, gTwin] = [`tb_first_${s}`, `tb_twin_${s}`, `tb_g_${s}`, `tb_gf_${s}`, `tb_gt_${s}`];
    dropLater.push(twin, g);
    await fx.createRole(first);
    await sql('super', [`ALTER ROLE ${first} BYPASSRLS`, ...(v16 ? [`ALTER ROLE ${fx.rotator} BYPASSRLS`] : [])]);
    // A group made by the superuser: the rotator holds no ADMIN OPTION on it.
    await sql('super', [`CREATE ROLE ${g} NOLOGIN`]);
    await fx.createRole(gFirst);
    await sql('super', [`GRANT ${g} TO ${gFirst}`]);
    const { path, env } = fx.writeConfig({
      accounts: [twinAccount('tb', [first, twin]), twinAccount('tb-g', [gFirst, gTwin])],
    });
    const r = await fx.cli(['--config', path, 'rotate', 'tb'], env);
    if (v16) {
      expect(r.code, r.stderr).toBe(0);
      expect((await attrs(twin))?.rolbypassrls).toBe(true);
    } else {
      expect(r.code).not.toBe(0);
      expect(r.stdout).toContain(`account tb: could not create role "${twin}" on target main as a twin of "${first}"`);
      expect(r.stdout).toContain('nothing was created');
      expect(await exists(twin)).toBe(false);
    }
    const rg = await fx.cli(['--config', path, 'rotate', 'tb-g'], env);
    if (v16) {
      expect(rg.code).not.toBe(0);
      expect(rg.stdout).toContain(
        `account tb-g: cannot create role "${gTwin}" on target main as a twin of "${gFirst}": admin login ${fx.rotator} has no ADMIN OPTION on "${g}" (PostgreSQL 16+): GRANT "${g}" TO "${fx.rotator}" WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`,
      );
      expect(await exists(gTwin)).toBe(false);
    } else {
      // Before 16, CREATEROLE may grant any non-superuser group.
      expect(rg.code, rg.stderr).toBe(0);
      dropLater.push(gTwin);
      expect(await memberships(gTwin)).toEqual(await memberships(gFirst));
    }
  });
});
