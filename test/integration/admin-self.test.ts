import { PG_VERSIONS } from '../support/pg-versions.js';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { quoteIdent } from '../../src/core/pg/quote.js';
import { scramVerifier } from '../../src/core/scram/scram-verifier.js';
import { passwordsIn } from '../support/invariants.js';
import { createPgFixture, uniqueSuffix, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// Issue 29.1: `admin: self` on the target, so no admin login is configured at all, and a role
// with no CREATEROLE: the built CLI rotates it by logging in as the role itself, on every
// supported major version. pg15 also runs with log_statement=all and pg_stat_statements, where
// the leak check looks for the plaintexts.

for (const version of PG_VERSIONS) {
  describe(`admin: self on ${version}`, () => {
    let fx: PgFixture;
    beforeAll(async () => {
      fx = await createPgFixture(pgServer(version));
    });
    afterAll(async () => {
      await fx?.cleanup();
    });

    /** A plain LOGIN role (no CREATEROLE) whose password the file provider holds as current. */
    async function seeded(tag: string) {
      const initial = `init-${randomBytes(12).toString('base64url')}`;
      const role = await fx.createRole(`self_${tag}_${uniqueSuffix()}`, { password: initial });
      const secret = `pg/${role}`;
      const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
      await provider.stagePending(secret, {
        username: role,
        password: initial,
        host: fx.server.host,
        port: fx.server.port,
        dbname: fx.targetDb,
        engine: 'postgres',
        rotatedAt: new Date().toISOString(),
        rotationId: 'seed',
      });
      await provider.promotePending(secret, 'seed');
      const name = role.replace(/_/g, '-');
      const { path, env } = fx.writeConfig({
        accounts: [{ name, target: 'main', role, provider: 'local', secret }],
        targetExtra: { admin: 'self' },
      });
      return { role, secret, provider, initial, name, path, env };
    }

    async function verifierOf(role: string): Promise<string | null> {
      const su = await fx.superClient();
      try {
        const r = await su.query<{ p: string | null; cr: boolean }>(
          'SELECT rolpassword AS p, rolcreaterole AS cr FROM pg_authid WHERE rolname = $1',
          [role],
        );
        expect(r.rows[0]?.cr).toBe(false);
        return r.rows[0]?.p ?? null;
      } finally {
        await su.end();
      }
    }

    it('rotates a role without CREATEROLE with no admin login, and the role cannot set its own VALID UNTIL', async () => {
      const s = await seeded('rot');
      const before = await verifierOf(s.role);

      const run = await fx.cli(['--config', s.path, 'rotate', s.name, '--json'], s.env);

      expect(run.code, run.stderr).toBe(0);
      const current = await s.provider.getCurrent(s.secret);
      expect(current?.password).not.toBe(s.initial);
      expect(await fx.canLogin(s.role, current?.password as string)).toBe(true);
      expect(await fx.canLogin(s.role, s.initial)).toBe(false);
      expect(await verifierOf(s.role)).not.toBe(before);
      const verify = await fx.cli(['--config', s.path, 'verify', s.name], s.env);
      expect(verify.code, verify.stderr).toBe(0);
      // Why renewValidUntil is refused with admin: self: PostgreSQL refuses it on this version.
      const c = await connectAs(fx, s.role, current?.password as string);
      await expect(c.query(`ALTER ROLE CURRENT_USER VALID UNTIL 'infinity'`)).rejects.toThrow(/permission denied/);
      await c.end();
      for (const p of [s.initial, current?.password as string]) {
        expect(run.stdout + run.stderr + verify.stdout + verify.stderr).not.toContain(p);
      }
      if (version === 'pg15') await expectNotInServer(fx, [s.initial, current?.password as string]);
    });

    it('a crash after apply resumes with the pending credential, which is then the one that logs in', async () => {
      const s = await seeded('crash');
      const crashed = await fx.cliProcess(['--config', s.path, 'rotate', s.name], {
        ...s.env,
        PGROTATE_FAILPOINT: 'after-apply',
      });
      expect(crashed.signal).toBe('SIGKILL');
      const pending = await s.provider.getPending(s.secret);
      expect(pending).not.toBeNull();
      // I1: the password PostgreSQL accepts now is the pending one.
      expect(await fx.canLogin(s.role, pending?.password as string)).toBe(true);
      expect(await fx.canLogin(s.role, s.initial)).toBe(false);

      const rerun = await fx.cliProcess(['--config', s.path, 'rotate', s.name, '--json'], s.env);

      expect(rerun.code, rerun.stderr).toBe(0);
      const result = (JSON.parse(rerun.stdout) as { results: Array<{ outcome: string; resumed: boolean }> }).results[0];
      expect(result).toMatchObject({ outcome: 'succeeded', resumed: true });
      const current = await s.provider.getCurrent(s.secret);
      expect(current?.rotationId).toBe(pending?.rotationId);
      expect(await fx.canLogin(s.role, current?.password as string)).toBe(true);
      expect(await s.provider.getPending(s.secret)).toBeNull();
      for (const p of await passwordsIn(s.provider, s.secret)) expect(rerun.stdout + rerun.stderr).not.toContain(p);
    });

    it('refuses, changing nothing, when the stored credential does not log in, and says an admin is needed once', async () => {
      const s = await seeded('stale');
      // Somebody changed the password behind pgrotate's back.
      const su = await fx.superClient();
      await su.query(`ALTER ROLE ${quoteIdent(s.role)} PASSWORD '${await scramVerifier(`other-${uniqueSuffix()}`)}'`);
      await su.end();
      const before = await verifierOf(s.role);

      const run = await fx.cli(['--config', s.path, 'rotate', s.name], s.env);

      expect(run.code).not.toBe(0);
      const said = (run.stdout + run.stderr).replace(/\\"/g, '"');
      expect(said).toContain(`account ${s.name}: admin: self logs in as role "${s.role}"`);
      expect(said).toContain('Nothing was changed');
      expect(said).toContain(`An admin is needed once to recover account ${s.name}`);
      expect(run.stderr + run.stdout).not.toContain(s.initial);
      expect(await verifierOf(s.role)).toBe(before);
      expect(await s.provider.getPending(s.secret)).toBeNull();
      expect((await s.provider.getCurrent(s.secret))?.password).toBe(s.initial);
    });
  });
}

async function connectAs(fx: PgFixture, role: string, password: string) {
  const pg = (await import('pg')).default;
  const c = new pg.Client({ host: fx.server.host, port: fx.server.port, user: role, password, database: fx.targetDb });
  await c.connect();
  return c;
}

/** No plaintext in the server log (log_statement=all) or pg_stat_statements. */
async function expectNotInServer(fx: PgFixture, passwords: string[]): Promise<void> {
  const log = readFileSync(fx.server.logFile, 'utf8');
  expect(log).toContain('ALTER ROLE CURRENT_USER PASSWORD');
  const su = await fx.superClient(fx.targetDb);
  try {
    await su.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    const statements = (await su.query<{ q: string }>('SELECT query AS q FROM pg_stat_statements')).rows
      .map((r) => r.q)
      .join('\n');
    for (const p of passwords) {
      expect(log).not.toContain(p);
      expect(statements).not.toContain(p);
    }
  } finally {
    await su.end();
  }
}
