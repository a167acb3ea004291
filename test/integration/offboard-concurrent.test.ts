import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VaultProvider } from '../../providers/vault/vault-provider.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import type { BaoServerInfo } from '../support/bao-server.js';
import { freePort } from '../support/free-port.js';
import { expectCurrentLogsIn } from '../support/invariants.js';
import { eventually, stateClient } from '../support/jobs-fixture.js';
import { CLI, createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';

// Issue 24, item 3: concurrent offboarding of one person. Twenty simultaneous POSTs to
// `pgrotate serve` (no queue) used to answer 500 to most of them because their accounts were
// `busy` with the first request's rotations, although every account was rotated exactly once.
// Now identical requests join the running offboarding and get its report; an account busy with
// another process's rotation is waited for and then either satisfied by it or rotated again,
// and `pgrotate offboard` run twice at once exits 0 both times with an honest report.

const bao = () => service<BaoServerInfo>('bao');
const HR_TOKEN = `hr-${randomUUID()}`;

interface Result {
  account: string;
  outcome: string;
  rotationId: string | null;
  sessionsEnded: number | null;
  detail: string | null;
}
interface Report {
  principal: string;
  rotated: string[];
  failed: string[];
  results: Result[];
  joined?: boolean;
}

describe('concurrent offboarding of the same principal', () => {
  let fx: PgFixture;
  let provider: VaultProvider;
  const run = randomUUID().slice(0, 8);
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    const su = await fx.superClient();
    await su.query(`GRANT pg_signal_backend TO ${fx.rotator}`);
    await su.end();
    const redactor = new Redactor();
    provider = new VaultProvider({
      name: 'bao',
      address: bao().address,
      mount: 'secret',
      auth: { method: 'token', token: bao().rootToken },
      redactor,
      log: createLogger(redactor, { level: 'silent' }),
    });
  });
  afterAll(async () => {
    await provider?.close();
    await fx?.cleanup();
  });

  /** A config with `n` accounts exposed to `principal`, their secrets in OpenBao. */
  async function setup(tag: string, principal: string, n: number) {
    const names = Array.from({ length: n }, (_, i) => `${tag}-${i}`);
    const roles = await Promise.all(names.map((name) => fx.createRole(`${name.replaceAll('-', '_')}_${fx.suffix}`)));
    const written = fx.writeConfig({
      accounts: names.map((name, i) => ({
        name,
        target: 'main',
        role: roles[i],
        provider: 'bao',
        secret: `oc-${run}/${name}`,
        exposedTo: [principal],
        schedule: 'manual',
      })),
      providers: { bao: { type: 'vault', address: bao().address, mount: 'secret', token: 'env:BAO_TEST_TOKEN' } },
      extra: { http: { tokens: [{ name: 'hr-system', token: 'env:TEST_HR_TOKEN', actions: ['offboard'] }] } },
    });
    const env = { ...written.env, BAO_TEST_TOKEN: bao().rootToken, TEST_HR_TOKEN: HR_TOKEN };
    return { names, roles, path: written.path, env };
  }

  async function rotationsOf(names: string[]) {
    const c = await stateClient(fx);
    try {
      return (
        await c.query<{ id: string; account: string; status: string }>(
          'SELECT id, account, status FROM pgrotate.rotations WHERE account = ANY($1) ORDER BY started_at',
          [names],
        )
      ).rows;
    } finally {
      await c.end();
    }
  }

  async function auditCount(kind: string, principal: string): Promise<number> {
    const c = await stateClient(fx);
    try {
      const r = await c.query<{ n: string }>(
        "SELECT count(*) AS n FROM pgrotate.audit_events WHERE kind = $1 AND detail->>'principal' = $2",
        [kind, principal],
      );
      return Number(r.rows[0]?.n);
    } finally {
      await c.end();
    }
  }

  it('20 simultaneous POST /v1/offboard to pgrotate serve: all 2xx, each account rotated once, every report the same', async () => {
    const principal = `dave-${run}`;
    const { names, path, env } = await setup('ocs', principal, 3);
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, '--config', path, 'serve', '--listen', `127.0.0.1:${port}`], {
      env,
      cwd: fx.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const passwords: string[] = [];
    const answers: unknown[] = [];
    try {
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.status === 200,
        'serve /healthz',
      );
      const responses = await Promise.all(
        Array.from({ length: 20 }, () =>
          fetch(`http://127.0.0.1:${port}/v1/offboard`, {
            method: 'POST',
            headers: { authorization: `Bearer ${HR_TOKEN}`, 'content-type': 'application/json' },
            body: JSON.stringify({ principal, terminateSessions: true }),
          }).then(async (r) => ({ status: r.status, body: (await r.json()) as Report })),
        ),
      );
      answers.push(...responses);
      expect(
        responses.map((r) => r.status),
        JSON.stringify(responses.find((r) => r.status !== 200)?.body),
      ).toEqual(Array(20).fill(200));

      // Exactly one rotation per account, finished.
      const rows = await rotationsOf(names);
      expect(rows.map((r) => r.account).sort()).toEqual([...names].sort());
      expect(rows.every((r) => r.status === 'succeeded')).toBe(true);
      const idOf = new Map(rows.map((r) => [r.account, r.id]));

      // Every report says exactly that: all rotated, none failed, each naming that one rotation.
      for (const { body } of responses) {
        expect(body.failed).toEqual([]);
        expect([...body.rotated].sort()).toEqual([...names].sort());
        for (const r of body.results) {
          expect(r.outcome).toBe('succeeded');
          expect(r.rotationId).toBe(idOf.get(r.account));
        }
      }
      // One led, the others joined it; each request is in the audit trail, the outcome once.
      expect(responses.filter((r) => r.body.joined === false)).toHaveLength(1);
      expect(await auditCount('offboard.requested', principal)).toBe(20);
      expect(await auditCount('offboard.completed', principal)).toBe(1);
      for (const name of names) {
        const current = await expectCurrentLogsIn(fx, provider, `oc-${run}/${name}`);
        passwords.push(current.password);
      }
    } finally {
      child.kill('SIGTERM');
      expect(await exited, out.slice(-2000)).toBe(0);
    }
    // I4: neither the answers nor the server's log carry a password or the token.
    expect(out).not.toContain(HR_TOKEN);
    for (const pw of passwords) {
      expect(out).not.toContain(pw);
      expect(JSON.stringify(answers)).not.toContain(pw);
    }
  }, 60_000);

  const offboardCli = async (path: string, env: NodeJS.ProcessEnv, principal: string) => {
    const r = await fx.cli(['--config', path, 'offboard', principal, '--terminate-sessions', '--json'], env);
    return { code: r.code, stderr: r.stderr, report: r.stdout.trim() ? (JSON.parse(r.stdout) as Report) : null };
  };

  it('pgrotate offboard twice at once (two processes): both exit 0, no account busy, each result names a rotation that really ran', async () => {
    const principal = `erin-${run}`;
    const { names, path, env } = await setup('occ', principal, 3);
    const [a, b] = await Promise.all([offboardCli(path, env, principal), offboardCli(path, env, principal)]);
    for (const r of [a, b]) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.report?.failed).toEqual([]);
      expect([...(r.report?.rotated ?? [])].sort()).toEqual([...names].sort());
    }
    const rows = await rotationsOf(names);
    expect(rows.every((r) => r.status === 'succeeded')).toBe(true);
    console.log(
      `two offboard processes: ${[a, b].map((r) => r.report?.results.map((x) => x.outcome).join('/')).join(' | ')}; ${rows.length} rotations for ${names.length} accounts`,
    );
    const ids = new Set(rows.map((r) => r.id));
    const results = [...(a.report?.results ?? []), ...(b.report?.results ?? [])];
    for (const name of names) {
      const mine = results.filter((r) => r.account === name);
      expect(mine.map((r) => r.outcome).sort()).not.toContain('busy');
      // Each result names a real, finished rotation of the account; a skipped one names the other
      // process's rotation (it satisfied this request), a succeeded one its own.
      for (const r of mine) expect(ids.has(r.rotationId as string)).toBe(true);
      const ran = mine.filter((r) => r.outcome === 'succeeded').map((r) => r.rotationId);
      expect(new Set(ran).size).toBe(ran.length);
      expect(rows.filter((row) => row.account === name).length).toBe(ran.length);
      const skipped = mine.filter((r) => r.outcome === 'skipped');
      for (const s of skipped) expect(ran).toContain(s.rotationId);
    }
    for (const name of names) await expectCurrentLogsIn(fx, provider, `oc-${run}/${name}`);
  }, 60_000);

  it('an offboarding that finds its accounts mid-rotation in another process waits, then rotates them itself (that rotation started before the request)', async () => {
    const principal = `fay-${run}`;
    const { names, path, env } = await setup('ocw', principal, 2);
    // The first process's rotations pause 2 s after staging, holding the accounts' fences.
    const first = offboardCli(path, { ...env, PGROTATE_FAILPOINT: 'pause-after-stage:2000' }, principal);
    await eventually(
      async () => (await rotationsOf(names)).length === names.length,
      'first rotations started',
      20_000,
      50,
    );
    const second = await offboardCli(path, env, principal);
    const earlier = await first;
    expect(earlier.code, earlier.stderr).toBe(0);
    expect(second.code, second.stderr).toBe(0);
    const rows = await rotationsOf(names);
    expect(rows).toHaveLength(2 * names.length);
    expect(rows.every((r) => r.status === 'succeeded')).toBe(true);
    for (const name of names) {
      const a = earlier.report?.results.find((r) => r.account === name);
      const b = second.report?.results.find((r) => r.account === name);
      expect(a?.outcome).toBe('succeeded');
      // Not satisfied by the first rotation (it started before this request): its own, later one.
      expect(b?.outcome, JSON.stringify(b)).toBe('succeeded');
      expect(b?.rotationId).not.toBe(a?.rotationId);
      expect(rows.filter((r) => r.account === name).map((r) => r.id)).toEqual([a?.rotationId, b?.rotationId]);
      await expectCurrentLogsIn(fx, provider, `oc-${run}/${name}`);
    }
  }, 60_000);
});
