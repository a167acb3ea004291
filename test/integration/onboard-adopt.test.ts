import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { DescribeSecretCommand, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextDueAfter } from '../../src/core/schedule/next-due.js';
import { awsSecretName, motoClient, seedSecret } from '../support/aws-test-client.js';
import { baoApi, type BaoServerInfo } from '../support/bao-server.js';
import { auditCounts, eventually, startWorker, testQueue, writeJobsConfig } from '../support/jobs-fixture.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';
import type { MotoServiceInfo } from '../services/moto-service.js';

// onboard: adopt end to end (issue 29.2) through the CLI's run-due on PostgreSQL 15: a secret
// that logs in is taken as current with no password change (the role's verifier in pg_authid
// and the stored secret are byte-for-byte unchanged), and its first rotation is due one interval
// after the store's own last-changed time (OpenBao KV created_time, AWS CreatedDate on moto) or,
// for a store without one (file), after the adoption. A secret that does not log in, is missing
// or names another role is reported with the reason and left alone; `rotate` then fixes it.

const EVERY = 30 * 86_400_000;
const SCHEDULE = { every: EVERY };
/** SCHEDULE as the config writes it. */
const SCHEDULE_CFG = { every: '30d' };

interface StatusRow {
  name: string;
  lastStatus: string;
  nextDueAt: string | null;
  adoptedAt: string | null;
  adoptedFrom: string | null;
  adoptRefusal: string | null;
  onboard: string;
}

describe('onboard: adopt (pg15, file, OpenBao, moto)', () => {
  let fx: PgFixture;
  const bao = () => service<BaoServerInfo>('bao');
  let moto: MotoServiceInfo;
  let aws: ReturnType<typeof motoClient>;
  const pw = () => randomBytes(15).toString('base64url');

  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    moto = service<MotoServiceInfo>('moto');
    aws = motoClient(moto);
  });
  afterAll(async () => {
    aws?.destroy();
    await fx?.cleanup();
  });

  const verifier = async (role: string): Promise<string | null> => {
    const c = await fx.superClient();
    try {
      const r = await c.query<{ rolpassword: string | null }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [
        role,
      ]);
      return r.rows[0]?.rolpassword ?? null;
    } finally {
      await c.end();
    }
  };
  const status = async (path: string, env: NodeJS.ProcessEnv): Promise<Map<string, StatusRow>> => {
    const r = await fx.cli(['--config', path, 'status', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    return new Map((JSON.parse(r.stdout) as { accounts: StatusRow[] }).accounts.map((a) => [a.name, a]));
  };
  const events = async (account: string) =>
    (
      await fx.stateQuery<{ kind: string; detail: Record<string, unknown> }>(
        'SELECT kind, detail FROM pgrotate.audit_events WHERE account = $1 ORDER BY id',
        [account],
      )
    ).rows;
  const rotations = async (account: string) =>
    Number(
      (await fx.stateQuery<{ n: string }>('SELECT count(*) AS n FROM pgrotate.rotations WHERE account = $1', [account]))
        .rows[0]?.n,
    );
  const expectNear = (actual: string | null, expected: Date | null, toleranceMs: number) => {
    expect(actual).not.toBeNull();
    expect(Math.abs(new Date(actual as string).getTime() - (expected as Date).getTime())).toBeLessThanOrEqual(
      toleranceMs,
    );
  };

  it('file provider: a working secret is adopted unchanged, a wrong, missing or foreign one is refused and untouched', async () => {
    const good = await fx.createRole(`ad_good_${fx.suffix}`, { password: 'adopt-good-Pw-1' });
    const bad = await fx.createRole(`ad_bad_${fx.suffix}`, { password: 'adopt-real-Pw-2' });
    const other = await fx.createRole(`ad_other_${fx.suffix}`, { password: 'adopt-other-Pw-3' });
    const foreignRole = await fx.createRole(`ad_for_${fx.suffix}`);
    const missingRole = await fx.createRole(`ad_miss_${fx.suffix}`, { password: 'adopt-miss-Pw-8' });
    const wrongPassword = `wrong-${pw()}`;
    const store = {
      'pg/good': { username: good, password: 'adopt-good-Pw-1', pool_size: 5 },
      'pg/bad': { username: bad, password: wrongPassword },
      'pg/foreign': { username: other, password: 'adopt-other-Pw-3' },
    };
    writeFileSync(fx.secretsFile, JSON.stringify(store), { mode: 0o600 });
    const storeBefore = readFileSync(fx.secretsFile, 'utf8');
    const { path, env } = fx.writeConfig({
      defaults: { onboard: 'adopt', schedule: SCHEDULE_CFG },
      accounts: [
        { name: 'good', target: 'main', role: good, provider: 'local', secret: 'pg/good' },
        { name: 'bad', target: 'main', role: bad, provider: 'local', secret: 'pg/bad' },
        // The secret names another role: logging in would prove nothing about this account's role.
        { name: 'foreign', target: 'main', role: foreignRole, provider: 'local', secret: 'pg/foreign' },
        { name: 'missing', target: 'main', role: missingRole, provider: 'local', secret: 'pg/none' },
      ],
    });
    const before = { good: await verifier(good), bad: await verifier(bad) };

    const started = Date.now();
    const run = await fx.cli(['--config', path, 'run-due'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/run-due: 0 due/);
    const ended = Date.now();

    // Nothing changed anywhere: the verifiers, the store, and no rotation record exists.
    expect(await verifier(good)).toBe(before.good);
    expect(await verifier(bad)).toBe(before.bad);
    expect(readFileSync(fx.secretsFile, 'utf8')).toBe(storeBefore);
    for (const a of ['good', 'bad', 'foreign', 'missing']) expect(await rotations(a)).toBe(0);

    const s = await status(path, env);
    const g = s.get('good') as StatusRow;
    expect(g).toMatchObject({ lastStatus: 'adopted', adoptedFrom: null, adoptRefusal: null, onboard: 'adopt' });
    // No last-changed time in a file store: one interval after the adoption.
    const adoptedAt = new Date(g.adoptedAt as string);
    expect(adoptedAt.getTime()).toBeGreaterThanOrEqual(started - 2000);
    expect(adoptedAt.getTime()).toBeLessThanOrEqual(ended + 2000);
    expectNear(g.nextDueAt, nextDueAfter(SCHEDULE, adoptedAt, 'good'), 2000);
    const ev = await events('good');
    expect(ev.map((e) => e.kind)).toEqual(['account.adopted']);
    expect(ev[0]?.detail).toMatchObject({ role: good, lastChanged: null });

    const b = s.get('bad') as StatusRow;
    expect(b).toMatchObject({ lastStatus: 'adopt-refused', adoptedAt: null, nextDueAt: null });
    expect(b.adoptRefusal).toMatch(
      /account bad: secret pg\/bad .*not adopted: its credential does not log in to target main/,
    );
    expect(s.get('foreign')?.adoptRefusal).toMatch(/username .*ad_other_.* is not the account's role/);
    expect(s.get('missing')?.adoptRefusal).toMatch(/account missing: secret pg\/none .*the secret does not exist/);
    expect((await events('bad')).map((e) => e.kind)).toEqual(['account.adopt-refused']);

    // I4: the wrong password appears nowhere pgrotate wrote.
    const audit = JSON.stringify(await fx.stateQuery('SELECT * FROM pgrotate.audit_events'));
    const accounts = JSON.stringify(await fx.stateQuery('SELECT * FROM pgrotate.accounts'));
    const text = await fx.cli(['--config', path, 'status'], env);
    expect(text.stdout).toMatch(/not adopted: account bad: /);
    for (const where of [run.stdout, run.stderr, audit, accounts, text.stdout, JSON.stringify([...s.values()])])
      for (const secret of [wrongPassword, 'adopt-good-Pw-1', 'adopt-other-Pw-3']) expect(where).not.toContain(secret);

    // The missing secret is put in place (the documented fix): the next run adopts it.
    writeFileSync(
      fx.secretsFile,
      JSON.stringify({ ...store, 'pg/none': { username: missingRole, password: 'adopt-miss-Pw-8' } }),
      { mode: 0o600 },
    );
    const missingBefore = await verifier(missingRole);
    // A second run: still nothing due, no repeated refusal event, the adoption stands.
    const again = await fx.cli(['--config', path, 'run-due'], env);
    expect(again.stdout).toMatch(/run-due: 0 due/);
    expect((await events('bad')).map((e) => e.kind)).toEqual(['account.adopt-refused']);
    expect((await status(path, env)).get('good')?.nextDueAt).toBe(g.nextDueAt);
    expect(await verifier(bad)).toBe(before.bad);
    const m = (await status(path, env)).get('missing') as StatusRow;
    expect(m).toMatchObject({ lastStatus: 'adopted', adoptRefusal: null });
    expect(await verifier(missingRole)).toBe(missingBefore);
    expect((await events('missing')).map((e) => e.kind)).toEqual(['account.adopt-refused', 'account.adopted']);

    // The documented fix: an explicit rotate rotates it (the admin sets a new password).
    const fixed = await fx.cli(['--config', path, 'rotate', 'bad'], env);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(await verifier(bad)).not.toBe(before.bad);
    const after = await status(path, env);
    expect(after.get('bad')).toMatchObject({ lastStatus: 'succeeded', adoptRefusal: null });
  });

  it('OpenBao: the first rotation is due one interval after the KV version created_time', async () => {
    const role = await fx.createRole(`ad_kv_${fx.suffix}`, { password: 'adopt-kv-Pw-4' });
    const secret = `adopt/${fx.suffix}`;
    const api = baoApi(bao().address, bao().rootToken);
    const w = await api('POST', `secret/data/${secret}`, { data: { username: role, password: 'adopt-kv-Pw-4' } });
    expect(w.status).toBe(200);
    const created = new Date((w.json.data as { created_time: string }).created_time);
    const { path, env: baseEnv } = fx.writeConfig({
      providers: { bao: { type: 'vault', address: bao().address, mount: 'secret', token: 'env:BAO_TEST_TOKEN' } },
      accounts: [
        { name: 'kv', target: 'main', role, provider: 'bao', secret, onboard: 'adopt', schedule: SCHEDULE_CFG },
      ],
    });
    const env = { ...baseEnv, BAO_TEST_TOKEN: bao().rootToken };
    const before = await verifier(role);

    const run = await fx.cli(['--config', path, 'run-due'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(await verifier(role)).toBe(before);
    const meta = await api('GET', `secret/metadata/${secret}`);
    expect((meta.json.data as { current_version: number }).current_version).toBe(1);
    const row = (await status(path, env)).get('kv') as StatusRow;
    expect(row.lastStatus).toBe('adopted');
    expectNear(row.adoptedFrom, created, 1);
    expectNear(row.nextDueAt, nextDueAfter(SCHEDULE, created, 'kv'), 1);
  });

  it('moto: the first rotation is due one interval after AWSCURRENT was created; a wrong secret stays untouched', async () => {
    const role = await fx.createRole(`ad_aws_${fx.suffix}`, { password: 'adopt-aws-Pw-5' });
    const badRole = await fx.createRole(`ad_awsbad_${fx.suffix}`, { password: 'adopt-aws-Pw-6' });
    const secret = awsSecretName('adopt');
    const badSecret = awsSecretName('adopt');
    await seedSecret(aws, secret, JSON.stringify({ username: role, password: 'adopt-aws-Pw-5' }));
    const badText = JSON.stringify({ username: badRole, password: 'not-the-password-7' });
    await seedSecret(aws, badSecret, badText);
    const created = (await aws.send(new GetSecretValueCommand({ SecretId: secret }))).CreatedDate as Date;
    const { path, env: baseEnv } = fx.writeConfig({
      providers: { aws: { type: 'aws-secrets-manager', region: moto.region, endpoint: moto.endpoint, maxAttempts: 3 } },
      defaults: { onboard: 'adopt', schedule: SCHEDULE_CFG },
      accounts: [
        { name: 'sm', target: 'main', role, provider: 'aws', secret },
        { name: 'smbad', target: 'main', role: badRole, provider: 'aws', secret: badSecret },
      ],
    });
    const env = { ...baseEnv, ...moto.env };
    const before = { ok: await verifier(role), bad: await verifier(badRole) };

    const run = await fx.cli(['--config', path, 'run-due'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(await verifier(role)).toBe(before.ok);
    expect(await verifier(badRole)).toBe(before.bad);
    expect((await aws.send(new GetSecretValueCommand({ SecretId: badSecret }))).SecretString).toBe(badText);
    const described = await aws.send(new DescribeSecretCommand({ SecretId: secret }));
    expect(Object.keys(described.VersionIdsToStages ?? {})).toHaveLength(1);
    const s = await status(path, env);
    const row = s.get('sm') as StatusRow;
    expect(row.lastStatus).toBe('adopted');
    expectNear(row.adoptedFrom, created, 1);
    expectNear(row.nextDueAt, nextDueAfter(SCHEDULE, created, 'sm'), 1);
    expect(s.get('smbad')).toMatchObject({ lastStatus: 'adopt-refused', nextDueAt: null });
    expect(s.get('smbad')?.adoptRefusal).toMatch(/does not log in/);
    expect(JSON.stringify(await fx.stateQuery('SELECT * FROM pgrotate.audit_events'))).not.toContain(
      'not-the-password-7',
    );
  });

  it('worker: adopts at start, before its first tick, and nothing rotates the adopted account', async () => {
    const role = await fx.createRole(`ad_wk_${fx.suffix}`, { password: 'adopt-worker-Pw-9' });
    const store = JSON.parse(readFileSync(fx.secretsFile, 'utf8')) as Record<string, unknown>;
    store['pg/worker'] = { username: role, password: 'adopt-worker-Pw-9' };
    writeFileSync(fx.secretsFile, JSON.stringify(store), { mode: 0o600 });
    const { path, env } = writeJobsConfig(
      fx,
      {
        accounts: [
          {
            name: 'wk',
            target: 'main',
            role,
            provider: 'local',
            secret: 'pg/worker',
            onboard: 'adopt',
            schedule: SCHEDULE_CFG,
          },
        ],
      },
      { queue: testQueue('postgres') },
    );
    const before = await verifier(role);
    const worker = startWorker(fx, path, env);
    try {
      await eventually(async () => (await auditCounts(fx, 'account.adopted')).get('wk') === 1, 'wk adopted');
      // A few ticks (1 s each) later, still not rotated.
      await new Promise((r) => setTimeout(r, 2500));
    } finally {
      await worker.stop();
    }
    expect(await verifier(role)).toBe(before);
    expect(await rotations('wk')).toBe(0);
    expect((await status(path, env)).get('wk')?.lastStatus).toBe('adopted');
    expect(worker.output()).not.toContain('adopt-worker-Pw-9');
  });

  it('a bad onboard value is refused at load, naming the account', async () => {
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'typo', target: 'main', role: 'r', provider: 'local', secret: 's', onboard: 'adoptt' }],
    });
    const r = await fx.cli(['--config', path, 'status'], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/accounts\[0\]\.onboard: .*"rotate".*"adopt".* \(account "typo"\)/);
    const d = fx.writeConfig({ defaults: { onboard: 'later' }, accounts: [] });
    const r2 = await fx.cli(['--config', d.path, 'status'], d.env);
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toMatch(/defaults\.onboard/);
  });
});
