import { randomUUID } from 'node:crypto';
import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsSecretsManagerProvider } from '../../providers/aws/aws-secrets-manager-provider.js';
import { scramVerifier } from '../../src/core/scram/scram-verifier.js';
import {
  allVersionIds,
  awsSecretName,
  consumerRead,
  labelledVersions,
  motoClient,
} from '../support/aws-test-client.js';
import { expectCurrentLogsIn, expectNoLostCredential, passwordsIn } from '../support/invariants.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';
import type { MotoServiceInfo } from '../services/moto-service.js';

// Rotations end to end through the CLI with the AWS Secrets Manager provider on moto and
// PostgreSQL 15: both strategies, the labels they leave, crashes after stage and apply, and a
// stale AWSPENDING from an earlier failed rotation. The crash tests run the built CLI (dist/,
// built by `npm test`'s pretest; run `npm run build` first when running this file alone).

describe('rotation through AWS Secrets Manager (moto)', () => {
  let fx: PgFixture;
  let moto: MotoServiceInfo;
  let client: ReturnType<typeof motoClient>;
  let provider: AwsSecretsManagerProvider;
  const providers = () => ({
    aws: { type: 'aws-secrets-manager', region: moto.region, endpoint: moto.endpoint, maxAttempts: 3 },
  });

  beforeAll(async () => {
    moto = service<MotoServiceInfo>('moto');
    fx = await createPgFixture(pgServer('pg15'));
    client = motoClient(moto);
    provider = new AwsSecretsManagerProvider({
      name: 'aws',
      region: moto.region,
      endpoint: moto.endpoint,
      env: moto.env,
    });
  });
  afterAll(async () => {
    await provider?.close();
    client?.destroy();
    await fx?.cleanup();
  });

  const config = (accounts: unknown[]) => {
    const { path, env } = fx.writeConfig({ accounts, providers: providers() });
    // Fake credentials for this child/CLI only, never in the test process's own environment.
    return { path, env: { ...env, ...moto.env } };
  };

  it('single-user: AWSCURRENT logs in, the old version is AWSPREVIOUS, nothing else is labelled', async () => {
    const role = await fx.createRole(`aws_one_${fx.suffix}`, { password: 'unmanaged-initial-password-1' });
    const secret = awsSecretName();
    const { path, env } = config([{ name: 'one', target: 'main', role, provider: 'aws', secret }]);

    const first = await fx.cli(['--config', path, 'rotate', 'one', '--json'], env);
    expect(first.code, first.stderr).toBe(0);
    const id1 = (JSON.parse(first.stdout) as { results: Array<{ rotationId: string }> }).results[0]
      ?.rotationId as string;
    const v1 = await consumerRead(client, secret);
    expect(v1).toMatchObject({
      username: role,
      host: fx.server.host,
      port: fx.server.port,
      dbname: fx.targetDb,
      engine: 'postgres',
      rotationId: id1,
    });
    expect(await fx.canLogin(role, v1?.password as string)).toBe(true);
    expect(await fx.canLogin(role, 'unmanaged-initial-password-1')).toBe(false);

    const second = await fx.cli(['--config', path, 'rotate', 'one', '--json'], env);
    expect(second.code, second.stderr).toBe(0);
    const id2 = (JSON.parse(second.stdout) as { results: Array<{ rotationId: string }> }).results[0]
      ?.rotationId as string;
    expect(await labelledVersions(client, secret)).toEqual({ [id2]: ['AWSCURRENT'], [id1]: ['AWSPREVIOUS'] });
    const v2 = await consumerRead(client, secret);
    expect(v2?.rotationId).toBe(id2);
    expect(await fx.canLogin(role, v2?.password as string)).toBe(true);
    expect(await fx.canLogin(role, v1?.password as string)).toBe(false);
    expect((await provider.getPrevious(secret))?.password).toBe(v1?.password);

    // I4: the JSON logs on stderr carry neither password.
    for (const run of [first, second]) {
      expect(run.stderr).not.toContain(v1?.password as string);
      expect(run.stderr).not.toContain(v2?.password as string);
      expect(run.stdout).not.toContain(v2?.password as string);
    }
  });

  it('alternating: the roles take turns and the labels follow', async () => {
    const owner = `aws_own_${fx.suffix}`;
    const c = await fx.rotatorClient('postgres');
    await c.query(`CREATE ROLE ${owner} NOLOGIN`);
    await c.end();
    const a = await fx.createRole(`aws_alt_a_${fx.suffix}`, { inRole: owner });
    const b = await fx.createRole(`aws_alt_b_${fx.suffix}`, { inRole: owner });
    const secret = awsSecretName();
    const { path, env } = config([
      {
        name: 'alt',
        target: 'main',
        strategy: 'alternating',
        roles: [a, b],
        gracePeriod: '1h',
        provider: 'aws',
        secret,
      },
    ]);

    const ids: string[] = [];
    const users: string[] = [];
    for (let i = 0; i < 3; i++) {
      const run = await fx.cli(['--config', path, 'rotate', 'alt', '--json'], env);
      expect(run.code, run.stderr).toBe(0);
      ids.push((JSON.parse(run.stdout) as { results: Array<{ rotationId: string }> }).results[0]?.rotationId as string);
      const current = await consumerRead(client, secret);
      expect(await fx.canLogin(current?.username as string, current?.password as string)).toBe(true);
      users.push(current?.username as string);
    }
    expect(users).toEqual([a, b, a]);
    expect(await labelledVersions(client, secret)).toEqual({
      [ids[2] as string]: ['AWSCURRENT'],
      [ids[1] as string]: ['AWSPREVIOUS'],
    });
    // During the grace period the previous role still logs in with the AWSPREVIOUS credential.
    const previous = await provider.getPrevious(secret);
    expect(previous?.username).toBe(b);
    expect(await fx.canLogin(b, previous?.password as string)).toBe(true);
  });

  for (const step of ['after-stage', 'after-apply'] as const) {
    it(`a process killed ${step} is finished by a rerun with the same version id and no duplicate versions`, async () => {
      const role = await fx.createRole(`aws_crash_${step.replace('-', '_')}_${fx.suffix}`, {
        password: 'unmanaged-initial-password-2',
      });
      const secret = awsSecretName();
      const name = `crash-${step}`;
      const { path, env } = config([{ name, target: 'main', role, provider: 'aws', secret }]);
      expect((await fx.cli(['--config', path, 'rotate', name], env)).code).toBe(0);
      const seen = new Set<string>(['unmanaged-initial-password-2', ...(await passwordsIn(provider, secret))]);
      const before = await allVersionIds(client, secret);

      const crashed = await fx.cliProcess(['--config', path, 'rotate', name], { ...env, PGROTATE_FAILPOINT: step });
      expect(crashed.signal).toBe('SIGKILL');
      const pending = await provider.getPending(secret);
      expect(pending).not.toBeNull();
      const stagedId = pending?.rotationId as string;
      for (const p of await passwordsIn(provider, secret)) seen.add(p);
      await expectNoLostCredential(fx, provider, secret, [role], seen);
      const afterCrash = await allVersionIds(client, secret);
      expect(afterCrash).toEqual([...before, stagedId].sort());

      const rerun = await fx.cliProcess(['--config', path, 'rotate', name, '--json'], env);
      expect(rerun.code, rerun.stderr).toBe(0);
      const result = (JSON.parse(rerun.stdout) as { results: Array<{ rotationId: string; resumed: boolean }> })
        .results[0];
      expect(result).toMatchObject({ rotationId: stagedId, resumed: true });
      expect(await allVersionIds(client, secret)).toEqual(afterCrash);
      const labels = await labelledVersions(client, secret);
      expect(labels[stagedId]).toEqual(['AWSCURRENT']);
      expect(Object.values(labels).flat().sort()).toEqual(['AWSCURRENT', 'AWSPREVIOUS']);
      const current = await expectCurrentLogsIn(fx, provider, secret);
      expect(current.rotationId).toBe(stagedId);
      await expectNoLostCredential(fx, provider, secret, [role], seen);
      for (const run of [crashed, rerun]) for (const p of seen) expect(run.stderr).not.toContain(p);
    });
  }

  it('a stale AWSPENDING from an earlier failed rotation that does not log in is discarded and the rotation completes', async () => {
    const role = await fx.createRole(`aws_stale_${fx.suffix}`, { password: 'unmanaged-initial-password-3' });
    const secret = awsSecretName();
    const { path, env } = config([{ name: 'stale', target: 'main', role, provider: 'aws', secret }]);
    expect((await fx.cli(['--config', path, 'rotate', 'stale'], env)).code).toBe(0);
    const staleId = randomUUID();
    const stalePassword = `stale-${randomUUID()}`;
    await client.send(
      new PutSecretValueCommand({
        SecretId: secret,
        SecretString: JSON.stringify({ username: role, password: stalePassword, engine: 'postgres' }),
        ClientRequestToken: staleId,
        VersionStages: ['AWSPENDING'],
      }),
    );
    const run = await fx.cli(['--config', path, 'rotate', 'stale', '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const id = (JSON.parse(run.stdout) as { results: Array<{ rotationId: string }> }).results[0]?.rotationId as string;
    const labels = await labelledVersions(client, secret);
    expect(labels[id]).toEqual(['AWSCURRENT']);
    expect(labels[staleId]).toBeUndefined();
    expect(run.stderr).not.toContain(stalePassword);
    const history = await fx.cli(['--config', path, 'history', 'stale', '--json'], env);
    expect(history.stdout).toContain('rotation.stale-pending-discarded');
    expect(history.stdout).toContain(staleId);
  });

  it("a stale AWSPENDING that is the role's only working password is promoted, then the rotation goes on", async () => {
    const livePassword = `live-${randomUUID()}`;
    const role = await fx.createRole(`aws_live_${fx.suffix}`, { password: livePassword });
    const secret = awsSecretName();
    const { path, env } = config([{ name: 'live', target: 'main', role, provider: 'aws', secret }]);
    expect((await fx.cli(['--config', path, 'rotate', 'live'], env)).code).toBe(0);
    // Put the role back on a password that only a pending version holds (a first rotation whose
    // verify was refused leaves exactly this): what applications read no longer logs in.
    const c = await fx.rotatorClient('postgres');
    await c.query(`ALTER ROLE ${role} PASSWORD '${await scramVerifier(livePassword)}'`);
    await c.end();
    const staleId = randomUUID();
    await client.send(
      new PutSecretValueCommand({
        SecretId: secret,
        SecretString: JSON.stringify({ username: role, password: livePassword }),
        ClientRequestToken: staleId,
        VersionStages: ['AWSPENDING'],
      }),
    );
    const run = await fx.cli(['--config', path, 'rotate', 'live', '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const result = (JSON.parse(run.stdout) as { results: Array<{ rotationId: string; warnings: string[] }> })
      .results[0];
    expect(result?.warnings.join('\n')).toMatch(
      /pending credential of failed rotation .* was the only password role .* logged in with; it was promoted/,
    );
    for (const out of [run.stdout, run.stderr]) expect(out).not.toContain(livePassword);
    // The stale value became AWSPREVIOUS when this rotation's own value was promoted after it.
    const labels = await labelledVersions(client, secret);
    expect(labels[result?.rotationId as string]).toEqual(['AWSCURRENT']);
    expect(labels[staleId]).toEqual(['AWSPREVIOUS']);
    expect(await fx.canLogin(role, livePassword)).toBe(false);
    const current = await consumerRead(client, secret);
    expect(await fx.canLogin(role, current?.password as string)).toBe(true);
    const history = await fx.cli(['--config', path, 'history', 'live', '--json'], env);
    expect(history.stdout).toContain('rotation.stale-pending-promoted');
    expect(history.stdout).toContain(staleId);
    expect(history.stdout).not.toContain(livePassword);
  });

  it('a stale AWSPENDING of a role the account does not manage that still logs in is kept and the rotation refuses, naming the account', async () => {
    const livePassword = `live-${randomUUID()}`;
    const role = await fx.createRole(`aws_mine_${fx.suffix}`);
    const other = await fx.createRole(`aws_foreign_${fx.suffix}`, { password: livePassword });
    const secret = awsSecretName();
    const { path, env } = config([{ name: 'foreign', target: 'main', role, provider: 'aws', secret }]);
    expect((await fx.cli(['--config', path, 'rotate', 'foreign'], env)).code).toBe(0);
    const staleId = randomUUID();
    await client.send(
      new PutSecretValueCommand({
        SecretId: secret,
        SecretString: JSON.stringify({ username: other, password: livePassword }),
        ClientRequestToken: staleId,
        VersionStages: ['AWSPENDING'],
      }),
    );
    const run = await fx.cli(['--config', path, 'rotate', 'foreign'], env);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(
      /account foreign: .*pending credential of rotation .* which this account does not manage, and it still logs in/,
    );
    expect(run.stderr).not.toContain(livePassword);
    expect((await labelledVersions(client, secret))[staleId]).toEqual(['AWSPENDING']);
    expect(await fx.canLogin(other, livePassword)).toBe(true);
  });
});
