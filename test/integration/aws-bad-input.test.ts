import { DeleteSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsSecretName, labelledVersions, motoClient, seedSecret } from '../support/aws-test-client.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer, service } from '../support/provided.js';
import type { MotoServiceInfo } from '../services/moto-service.js';

// Bad input and failing stores through the CLI with the AWS provider: each is a clear error
// naming the account and secret (and the action, for permissions), never echoes a value, and
// leaves the role's password in PostgreSQL as it was (I5).

describe('AWS Secrets Manager provider: bad input through the CLI', () => {
  let fx: PgFixture;
  let moto: MotoServiceInfo;
  let client: ReturnType<typeof motoClient>;
  const initial = 'unmanaged-initial-password-9';

  beforeAll(async () => {
    moto = service<MotoServiceInfo>('moto');
    fx = await createPgFixture(pgServer('pg15'));
    client = motoClient(moto);
  });
  afterAll(async () => {
    client?.destroy();
    await fx?.cleanup();
  });

  async function attempt(
    label: string,
    secret: string,
    provider: Record<string, unknown>,
    env: Record<string, string>,
  ) {
    const role = await fx.createRole(`aws_bad_${label}_${fx.suffix}`, { password: initial });
    const written = fx.writeConfig({
      accounts: [{ name: `bad-${label}`, target: 'main', role, provider: 'aws', secret }],
      providers: { aws: provider },
    });
    const t0 = Date.now();
    const run = await fx.cli(['--config', written.path, 'rotate', `bad-${label}`], { ...written.env, ...env });
    // Nothing changed in PostgreSQL: the role still has the password it had.
    expect(await fx.canLogin(role, initial)).toBe(true);
    return { ...run, ms: Date.now() - t0 };
  }

  const open = () => ({ type: 'aws-secrets-manager', region: moto.region, endpoint: moto.endpoint, maxAttempts: 2 });

  it('a current value that is not JSON', async () => {
    const secret = awsSecretName();
    await seedSecret(client, secret, 'username=app password=hunter2-not-json');
    const run = await attempt('notjson', secret, open(), moto.env);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(new RegExp(`account bad-notjson: .*secret ${secret}.*not JSON`));
    expect(run.stderr).not.toContain('hunter2-not-json');
  });

  it('JSON without username', async () => {
    const secret = awsSecretName();
    await seedSecret(client, secret, JSON.stringify({ password: 'no-user-secret-value', host: 'h' }));
    const run = await attempt('nouser', secret, open(), moto.env);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(new RegExp(`account bad-nouser: .*secret ${secret}.*missing or invalid: username`));
    expect(run.stderr).not.toContain('no-user-secret-value');
  });

  it('a secret scheduled for deletion', async () => {
    const secret = awsSecretName();
    await seedSecret(client, secret, JSON.stringify({ username: 'x', password: 'deleted-secret-value' }));
    await client.send(new DeleteSecretCommand({ SecretId: secret, RecoveryWindowInDays: 7 }));
    const run = await attempt('deleted', secret, open(), moto.env);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(
      new RegExp(`account bad-deleted: .*secret ${secret} is scheduled for deletion; restore it with RestoreSecret`),
    );
    expect(run.stderr).not.toContain('deleted-secret-value');
  });

  it('an unreachable endpoint fails after the configured attempts, naming account and secret', async () => {
    const secret = awsSecretName();
    const run = await attempt(
      'unreachable',
      secret,
      {
        type: 'aws-secrets-manager',
        region: moto.region,
        endpoint: 'http://127.0.0.1:9',
        maxAttempts: 2,
        timeout: '2s',
      },
      moto.env,
    );
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(
      new RegExp(
        `account bad-unreachable: could not read the current value of secret ${secret} in provider aws: .*cannot reach Secrets Manager at http://127.0.0.1:9 \\(ECONNREFUSED\\)`,
      ),
    );
    expect(run.ms).toBeLessThan(20_000);
  });

  it('missing permission (moto enforcing IAM, no secretsmanager:PutSecretValue) names the secret and the action', async () => {
    const secret = awsSecretName();
    const run = await attempt(
      'denied',
      secret,
      { type: 'aws-secrets-manager', region: moto.region, endpoint: moto.restricted.endpoint, maxAttempts: 1 },
      moto.restricted.env,
    );
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(
      new RegExp(
        `account bad-denied: could not stage a pending value in secret ${secret} in provider aws: .*PutSecretValue on secret ${secret} failed: access denied .*secretsmanager:PutSecretValue`,
      ),
    );
    expect(run.stderr).not.toContain(moto.restricted.env.AWS_SECRET_ACCESS_KEY as string);
  });

  it('a failed rotation leaves no pending version behind that consumers could read', async () => {
    const secret = awsSecretName();
    await seedSecret(client, secret, 'still not json');
    await attempt('nolabels', secret, open(), moto.env);
    expect(Object.values(await labelledVersions(client, secret)).flat()).toEqual(['AWSCURRENT']);
  });
});
