import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { App } from '../../src/core/app.js';
import { queueSettings, type AccountConfig } from '../../src/core/config/config-schema.js';
import { configSchema } from '../../src/app/load-config.js';
import { RotationDispatch, resultOfJob } from '../../src/services/dispatch/rotation-dispatch.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { newRotationResult, type RotateOptions } from '../../src/core/rotation/rotation-engine.js';

// The one dispatch decision (issue 15 item 3): `rotate` runs here straight through the engine
// without a queue, and a dry run stays here even with one; queued jobs' outcomes map to results
// in one place; queue defaults come from the zod schema. The app is an in-memory fake whose
// engine records its calls (the queued path and the runner are covered by the integration tests).

const base = {
  state: { url: 'postgres://x@127.0.0.1/x' },
  providers: { local: { type: 'file', path: '/tmp/unused.json' } },
  targets: { main: { host: '127.0.0.1', database: 'x', admin: { username: 'x', password: 'x' } } },
  accounts: [
    { name: 'a', target: 'main', role: 'a_role', provider: 'local', secret: 'pg/a' },
    { name: 'b', target: 'main', role: 'b_role', provider: 'local', secret: 'pg/b' },
  ],
};

function fakeApp(withQueue: boolean) {
  const config = configSchema.parse(withQueue ? { ...base, queue: { backend: 'postgres' } } : base);
  const calls: Array<{ account: string; opts: RotateOptions }> = [];
  const redactor = new Redactor();
  const app = {
    config,
    log: createLogger(redactor, { destination: new PassThrough() }),
    stateCredential: null,
    state: {
      now: async () => {
        throw new Error('a direct rotation needs no request time');
      },
    },
    engine: {
      rotate: async (account: AccountConfig, opts: RotateOptions) => {
        calls.push({ account: account.name, opts });
        const r = newRotationResult(account.name, account.target);
        r.outcome = opts.dryRun ? 'dry-run' : 'succeeded';
        r.role = `${account.name}_role`;
        r.nextDueAt = new Date('2030-01-02T03:04:05.678Z');
        return r;
      },
    },
    account: (name: string) => config.accounts.find((a) => a.name === name) as AccountConfig,
  } as unknown as App;
  return { app, calls };
}

const request = { kind: 'on-demand' as const, reason: 'why', requestedBy: 'cli:test', terminateSessions: true };

describe('RotationDispatch', () => {
  it('without a queue, rotate runs each account here through the engine and returns JSON results in order', async () => {
    const { app, calls } = fakeApp(false);
    const rotations = new RotationDispatch(app);
    expect(rotations.queued).toBe(false);
    const progress: string[] = [];
    const d = await rotations.request(['a', 'b'], request, {
      wait: null,
      direct: { concurrency: 1, dryRun: false },
      progress: (done, total) => progress.push(`${done}/${total}`),
    });
    expect(d.jobIds).toBeNull();
    const results = await d.results;
    expect(results?.map((r) => [r.account, r.outcome, r.nextDueAt, r.detail])).toEqual([
      ['a', 'succeeded', '2030-01-02T03:04:05.678Z', null],
      ['b', 'succeeded', '2030-01-02T03:04:05.678Z', null],
    ]);
    expect(calls.map((c) => c.account)).toEqual(['a', 'b']);
    expect(calls[0]?.opts).toEqual({ reason: 'why', requestedBy: 'cli:test', dryRun: false, terminateSessions: true });
    expect(progress).toEqual(['1/2', '2/2']);
    await rotations.close();
  });

  it('with a queue, a dry run still runs here (it changes nothing) and never touches the queue', async () => {
    const { app, calls } = fakeApp(true);
    const rotations = new RotationDispatch(app);
    expect(rotations.queued).toBe(true);
    const d = await rotations.request(['a'], request, { wait: null, direct: { concurrency: 4, dryRun: true } });
    expect(d.jobIds).toBeNull();
    expect((await d.results)?.map((r) => r.outcome)).toEqual(['dry-run']);
    expect(calls[0]?.opts.dryRun).toBe(true);
    await rotations.close();
  });

  it('maps queued jobs to results once: the return value, a failure with its permanence, or a timeout naming the job', () => {
    const done = newRotationResultJson('a');
    expect(
      resultOfJob(
        { id: 'on-demand:a:1', account: 'a', state: 'completed', result: done, failedReason: null, permanent: false },
        60_000,
      ),
    ).toBe(done);
    expect(
      resultOfJob(
        {
          id: 'on-demand:b:2',
          account: 'b',
          state: 'failed',
          result: null,
          failedReason: 'role missing',
          permanent: true,
        },
        60_000,
      ),
    ).toMatchObject({
      account: 'b',
      outcome: 'failed',
      target: null,
      error: { type: 'RotationFailed', message: 'role missing', permanent: true },
    });
    for (const state of ['pending', 'missing'] as const) {
      expect(
        resultOfJob(
          { id: 'offboard:c:3', account: 'c', state, result: null, failedReason: null, permanent: false },
          90_000,
        ),
      ).toMatchObject({
        account: 'c',
        outcome: 'failed',
        error: { message: 'job offboard:c:3 did not finish within 90 s (is a worker running?)', permanent: false },
      });
    }
  });

  it('queue settings come from the schema: its defaults without a queue section, the config otherwise', () => {
    const none = configSchema.parse(base);
    expect(queueSettings(none)).toMatchObject({
      backend: 'postgres',
      tickInterval: 30_000,
      tickBatch: 1000,
      attempts: 5,
      backoff: 10_000,
      backoffCap: 600_000,
      cooldown: 3_600_000,
      lockDuration: 30_000,
      shutdownTimeout: 30_000,
    });
    const some = configSchema.parse({ ...base, queue: { attempts: 3, cooldown: '1m' } });
    expect(queueSettings(some)).toMatchObject({ attempts: 3, cooldown: 60_000, tickInterval: 30_000 });
  });
});

function newRotationResultJson(account: string) {
  return {
    account,
    target: 'main',
    outcome: 'succeeded' as const,
    rotationId: 'r',
    role: 'x',
    oldCredentialExpiresAt: null,
    nextDueAt: null,
    sessionsEnded: null,
    resumed: false,
    error: null,
    warnings: [],
    detail: null,
    restarts: [],
  };
}
