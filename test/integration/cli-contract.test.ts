import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// The CLI contract against real PostgreSQL 15: usage errors exit 2 as the README says (checked
// before the config is read), and `offboard` of a principal nobody names (a typo, an empty
// string) is an error naming it, unless --allow-none says that is expected.

let fx: PgFixture;
let cfg: { path: string; env: NodeJS.ProcessEnv };
let aliceRole: string;
let otherRole: string;

beforeAll(async () => {
  fx = await createPgFixture(pgServer('pg15'));
  aliceRole = await fx.createRole(`cli_alice_${fx.suffix}`, { password: 'alice-initial-password-1' });
  otherRole = await fx.createRole(`cli_other_${fx.suffix}`, { password: 'other-initial-password-1' });
  cfg = fx.writeConfig({
    accounts: [
      {
        name: 'alice-app',
        target: 'main',
        role: aliceRole,
        provider: 'local',
        secret: 'pg/alice-app',
        exposedTo: ['alice'],
      },
      {
        name: 'other-app',
        target: 'main',
        role: otherRole,
        provider: 'local',
        secret: 'pg/other-app',
        exposedTo: ['bob'],
      },
    ],
    // carol is a known person whose group no account lists: offboarding her rotates nothing, legitimately.
    extra: { groups: { interns: ['carol'] } },
  });
});

afterAll(async () => {
  await fx?.cleanup();
});

async function offboardEvents(): Promise<number> {
  const c = await fx.rotatorClient(fx.stateDb);
  try {
    const r = await c.query<{ n: string }>(
      `SELECT count(*) AS n FROM pgrotate.audit_events WHERE kind = 'offboard.requested'`,
    );
    return Number(r.rows[0]?.n);
  } catch {
    return 0; // schema not created yet
  } finally {
    await c.end();
  }
}

describe('usage errors exit 2', () => {
  it.each([
    [['offboard'], /offboard: name exactly one PRINCIPAL/],
    [['offboard', 'a', 'b'], /offboard: name exactly one PRINCIPAL/],
    [['rotate'], /rotate: name one or more accounts, or --all/],
    [['rotate', 'alice-app', '--all'], /rotate: name one or more accounts, or --all \(not both\)/],
    [['history'], /history: name exactly one ACCOUNT/],
    [['audit'], /audit: name exactly one TARGET/],
    [['status', 'extra'], /status takes no arguments/],
    [['run-due', 'extra'], /run-due takes no arguments/],
    [['rotate', '--all', '--concurrency', '0'], /--concurrency must be a positive whole number/],
    [['history', 'alice-app', '--limit', 'x'], /--limit must be a positive whole number/],
  ])('%j', async (args, message) => {
    const r = await fx.cli(['--config', cfg.path, ...args], cfg.env);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('a usage error is reported even when the config cannot be read, and the built CLI exits 2', async () => {
    const r = await fx.cli(['--config', '/nonexistent/pgrotate.yaml', 'history'], cfg.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/history: name exactly one ACCOUNT/);
    const proc = await fx.cliProcess(['--config', cfg.path, 'offboard'], cfg.env);
    expect(proc.code, proc.stderr).toBe(2);
    expect(proc.stderr).toMatch(/offboard: name exactly one PRINCIPAL/);
  });
});

describe('offboard of a principal nobody names', () => {
  it('a typo and an empty principal exit 2 naming it; nothing is rotated or recorded', async () => {
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    const before = await offboardEvents();
    const typo = await fx.cli(['--config', cfg.path, 'offboard', 'alcie'], cfg.env);
    expect(typo.code, typo.stdout + typo.stderr).toBe(2);
    expect(typo.stderr).toMatch(/unknown principal "alcie": no account's exposedTo and no group lists it/);
    expect(typo.stderr).toMatch(/--allow-none/);
    for (const empty of ['', '  ']) {
      const r = await fx.cli(['--config', cfg.path, 'offboard', empty], cfg.env);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/offboard: the principal is empty/);
    }
    const json = await fx.cli(['--config', cfg.path, 'offboard', 'alcie', '--json'], cfg.env);
    expect(json.code).toBe(2);
    expect(json.stdout).toBe('');
    const proc = await fx.cliProcess(['--config', cfg.path, 'offboard', 'alcie'], cfg.env);
    expect(proc.code, proc.stderr).toBe(2);
    expect(await provider.getCurrent('pg/alice-app')).toBeNull();
    expect(await provider.getCurrent('pg/other-app')).toBeNull();
    expect(await fx.canLogin(aliceRole, 'alice-initial-password-1')).toBe(true);
    expect(await offboardEvents()).toBe(before);
  });

  it('--allow-none accepts an unknown principal (exit 0, nothing rotated); a known principal with no account exits 0 without it', async () => {
    const allowed = await fx.cli(['--config', cfg.path, 'offboard', 'alcie', '--allow-none'], cfg.env);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toMatch(/offboard alcie: 0 rotated, 0 failed/);
    const carol = await fx.cli(['--config', cfg.path, 'offboard', 'carol', '--json'], cfg.env);
    expect(carol.code, carol.stderr).toBe(0);
    expect(JSON.parse(carol.stdout)).toMatchObject({ principal: 'carol', rotated: [], failed: [] });
    // --allow-none never makes an empty principal acceptable.
    expect((await fx.cli(['--config', cfg.path, 'offboard', '', '--allow-none'], cfg.env)).code).toBe(2);
  });

  it('a named principal is still offboarded: their account rotates, the other does not', async () => {
    const r = await fx.cli(['--config', cfg.path, 'offboard', 'alice'], cfg.env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/offboard alice: 1 rotated, 0 failed/);
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    const current = await provider.getCurrent('pg/alice-app');
    expect(await fx.canLogin(aliceRole, current?.password as string)).toBe(true);
    expect(await fx.canLogin(aliceRole, 'alice-initial-password-1')).toBe(false);
    expect(await provider.getCurrent('pg/other-app')).toBeNull();
  });
});
