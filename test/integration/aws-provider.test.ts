import { randomUUID } from 'node:crypto';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  PutSecretValueCommand,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, describe, expect, it } from 'vitest';
import { AwsSecretsManagerProvider } from '../../providers/aws/aws-secrets-manager-provider.js';
import { ProviderError } from '../../src/core/errors.js';
import { describeProviderConformance, sampleValue } from '../conformance/provider-conformance.js';
import {
  allVersionIds,
  awsSecretName,
  consumerRead,
  labelledVersions,
  motoClient,
  seedSecret,
} from '../support/aws-test-client.js';
import { service } from '../support/provided.js';
import type { MotoServiceInfo } from '../services/moto-service.js';

// The AWS Secrets Manager provider against a real moto server: the conformance suite, then the
// staging-label details AWS consumers and rotation functions depend on.

const moto = () => service<MotoServiceInfo>('moto');

function provider(
  overrides: Partial<ConstructorParameters<typeof AwsSecretsManagerProvider>[0]> = {},
): AwsSecretsManagerProvider {
  const m = moto();
  return new AwsSecretsManagerProvider({
    name: 'aws',
    region: m.region,
    endpoint: m.endpoint,
    env: m.env,
    maxAttempts: 2,
    ...overrides,
  });
}

describeProviderConformance('aws-secrets-manager (moto)', async () => {
  const p = provider();
  const client = motoClient(moto());
  return {
    provider: p,
    secretName: () => awsSecretName(),
    consumerRead: (secret) => consumerRead(client, secret),
    seedRaw: (secret, text) => seedSecret(client, secret, text),
    cleanup: async () => {
      await p.close();
      client.destroy();
    },
  };
});

describe('aws-secrets-manager provider: staging labels', () => {
  const p = provider();
  const client = motoClient(moto());
  afterAll(async () => {
    await p.close();
    client.destroy();
  });

  it('a new secret is created with a placeholder current that is no credential; the first value is AWSPENDING with the rotation id as version', async () => {
    const s = awsSecretName();
    const v = sampleValue();
    await p.stagePending(s, v);
    const labels = await labelledVersions(client, s);
    expect(labels[v.rotationId]).toEqual(['AWSPENDING']);
    const placeholderId = Object.keys(labels).find((id) => id !== v.rotationId) as string;
    expect(labels[placeholderId]).toEqual(['AWSCURRENT']);
    expect(await consumerRead(client, s)).toBeNull();
    await p.promotePending(s, v.rotationId);
    expect(await labelledVersions(client, s)).toEqual({
      [v.rotationId]: ['AWSCURRENT'],
      [placeholderId]: ['AWSPREVIOUS'],
    });
    // The placeholder is not a credential: no previous credential exists.
    expect(await p.getPrevious(s)).toBeNull();
  });

  it('after a rotation the labels are exactly AWSCURRENT on the new version and AWSPREVIOUS on the old one', async () => {
    const s = awsSecretName();
    const v1 = sampleValue();
    const v2 = sampleValue();
    await p.stagePending(s, v1);
    await p.promotePending(s, v1.rotationId);
    await p.stagePending(s, v2);
    await p.promotePending(s, v2.rotationId);
    expect(await labelledVersions(client, s)).toEqual({
      [v2.rotationId]: ['AWSCURRENT'],
      [v1.rotationId]: ['AWSPREVIOUS'],
    });
    expect((await consumerRead(client, s))?.password).toBe(v2.password);
    expect((await p.getPrevious(s))?.password).toBe(v1.password);
  });

  it('the stored JSON is the RDS rotation shape plus rotation facts', async () => {
    const s = awsSecretName();
    const v = sampleValue();
    await p.stagePending(s, v);
    await p.promotePending(s, v.rotationId);
    expect(await consumerRead(client, s)).toEqual({
      username: v.username,
      password: v.password,
      host: v.host,
      port: v.port,
      dbname: v.dbname,
      engine: 'postgres',
      rotatedAt: v.rotatedAt,
      rotationId: v.rotationId,
    });
  });

  it('a retried stage re-uses the version of its rotation id: no duplicate versions', async () => {
    const s = awsSecretName();
    const v = sampleValue();
    await p.stagePending(s, v);
    const before = await allVersionIds(client, s);
    await p.stagePending(s, { ...v, password: `retry-${randomUUID()}` });
    await p.stagePending(s, v);
    expect(await allVersionIds(client, s)).toEqual(before);
    expect((await p.getPending(s))?.password).toBe(v.password);
  });

  it('a stale AWSPENDING left by someone else is reported with its version id as rotation id, and discard removes only that label', async () => {
    const s = awsSecretName();
    const current = sampleValue();
    await p.stagePending(s, current);
    await p.promotePending(s, current.rotationId);
    // What an AWS rotation function leaves after failing in setSecret: RDS JSON, no rotationId.
    const staleId = randomUUID();
    const { rotationId: _drop, rotatedAt: _drop2, ...rds } = sampleValue();
    await client.send(
      new PutSecretValueCommand({
        SecretId: s,
        SecretString: JSON.stringify(rds),
        ClientRequestToken: staleId,
        VersionStages: ['AWSPENDING'],
      }),
    );
    const pending = await p.getPending(s);
    expect(pending?.rotationId).toBe(staleId);
    expect(pending?.password).toBe(rds.password);
    await expect(p.stagePending(s, sampleValue())).rejects.toThrow(new RegExp(`${s}.*pending.*${staleId}`));
    await p.discardPending(s, staleId);
    expect(await p.getPending(s)).toBeNull();
    expect(await labelledVersions(client, s)).toMatchObject({ [current.rotationId]: ['AWSCURRENT'] });
    const next = sampleValue();
    await p.stagePending(s, next);
    await p.promotePending(s, next.rotationId);
    expect((await consumerRead(client, s))?.password).toBe(next.password);
  });

  it('a promote interrupted between its two label moves is finished by promoting again', async () => {
    const s = awsSecretName();
    const v1 = sampleValue();
    await p.stagePending(s, v1);
    await p.promotePending(s, v1.rotationId);
    const v2 = sampleValue();
    await p.stagePending(s, v2);
    // First half of a promote only: AWSCURRENT moved, AWSPENDING still on the same version.
    await client.send(
      new UpdateSecretVersionStageCommand({
        SecretId: s,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: v2.rotationId,
        RemoveFromVersionId: v1.rotationId,
      }),
    );
    expect(await p.getPending(s)).toBeNull();
    expect((await p.getCurrent(s))?.password).toBe(v2.password);
    await p.promotePending(s, v2.rotationId);
    expect(await labelledVersions(client, s)).toEqual({
      [v2.rotationId]: ['AWSCURRENT'],
      [v1.rotationId]: ['AWSPREVIOUS'],
    });
  });

  it('a secret created by hand without a value gets the placeholder, so the pending value is still not current', async () => {
    const s = awsSecretName();
    await client.send(new CreateSecretCommand({ Name: s }));
    const v = sampleValue();
    await p.stagePending(s, v);
    expect(await consumerRead(client, s)).toBeNull();
    expect(await p.getCurrent(s)).toBeNull();
    await p.promotePending(s, v.rotationId);
    expect((await consumerRead(client, s))?.password).toBe(v.password);
  });

  it('creates new secrets with the configured KMS key and tags', async () => {
    const kms = provider({ kmsKeyId: 'alias/pgrotate-test', tags: { team: 'dba', 'managed-by': 'pgrotate' } });
    const s = awsSecretName();
    await kms.stagePending(s, sampleValue());
    const d = await client.send(new DescribeSecretCommand({ SecretId: s }));
    expect(d.KmsKeyId).toBe('alias/pgrotate-test');
    expect(Object.fromEntries((d.Tags ?? []).map((t) => [t.Key, t.Value]))).toEqual({
      team: 'dba',
      'managed-by': 'pgrotate',
    });
    await kms.close();
  });
});

describe('aws-secrets-manager provider: bad input and failures', () => {
  const p = provider();
  const client = motoClient(moto());
  afterAll(async () => {
    await p.close();
    client.destroy();
  });

  it('a secret scheduled for deletion is a clear error naming the secret', async () => {
    const s = awsSecretName();
    const v = sampleValue();
    await p.stagePending(s, v);
    await p.promotePending(s, v.rotationId);
    await client.send(new DeleteSecretCommand({ SecretId: s, RecoveryWindowInDays: 7 }));
    // getCurrent (the engine's preflight) and stagePending say so; getPending only reports "no pending".
    for (const op of [() => p.getCurrent(s), () => p.stagePending(s, sampleValue())]) {
      const err = await op().then(
        () => null,
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(ProviderError);
      expect(err?.message).toMatch(new RegExp(`secret ${s} is scheduled for deletion`));
      expect(err?.message).not.toContain(v.password);
    }
  });

  it('an unreachable endpoint is a ProviderError naming the secret, after a bounded number of attempts', async () => {
    const dead = provider({ endpoint: 'http://127.0.0.1:9', maxAttempts: 2, timeoutMs: 2_000 });
    const s = awsSecretName();
    const t0 = Date.now();
    const err = await dead.getCurrent(s).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).secret).toBe(s);
    expect(err?.message).toMatch(
      new RegExp(
        `provider aws: GetSecretValue on secret ${s} failed: cannot reach Secrets Manager at http://127.0.0.1:9 \\(ECONNREFUSED\\)`,
      ),
    );
    expect(Date.now() - t0).toBeLessThan(15_000);
    await dead.close();
  });

  it('missing permissions (moto enforcing IAM): the error names the secret and the denied action', async () => {
    const m = moto();
    const restricted = new AwsSecretsManagerProvider({
      name: 'aws',
      region: m.region,
      endpoint: m.restricted.endpoint,
      env: m.restricted.env,
      maxAttempts: 1,
    });
    const s = awsSecretName();
    const v = sampleValue();
    const err = await restricted.stagePending(s, v).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(ProviderError);
    expect(err?.message).toMatch(
      new RegExp(`PutSecretValue on secret ${s} failed: access denied .*secretsmanager:PutSecretValue`),
    );
    expect(err?.message).not.toContain(v.password);
    // The allowed calls did work: the secret exists with its placeholder and no pending value.
    expect(await restricted.getCurrent(s)).toBeNull();
    expect(await restricted.getPending(s)).toBeNull();
    await restricted.close();
  });

  it('wrong credentials against the IAM-enforcing server are access denied, naming the secret', async () => {
    const m = moto();
    const wrong = new AwsSecretsManagerProvider({
      name: 'aws',
      region: m.region,
      endpoint: m.restricted.endpoint,
      env: { AWS_ACCESS_KEY_ID: 'AKIAWRONGWRONGWRONG1', AWS_SECRET_ACCESS_KEY: 'not-a-real-secret-key' },
      maxAttempts: 1,
    });
    const s = awsSecretName();
    await expect(wrong.getCurrent(s)).rejects.toThrow(
      new RegExp(`GetSecretValue on secret ${s} failed: access denied`),
    );
    await wrong.close();
  });

  it('binary secrets and values without username are refused with the secret named and no value echoed', async () => {
    const s = awsSecretName();
    await client.send(new CreateSecretCommand({ Name: s, SecretBinary: Buffer.from('binary-secret-bytes') }));
    await expect(p.getCurrent(s)).rejects.toThrow(new RegExp(`secret ${s} holds binary data`));
    const t = awsSecretName();
    await seedSecret(client, t, JSON.stringify({ user: 'x', password: 'leaky-value-123' }));
    const err = await p.getCurrent(t).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(new RegExp(`${t}.*username`));
    expect(err?.message).not.toContain('leaky-value-123');
  });
});
