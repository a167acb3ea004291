import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { AccountConfig } from '../../src/core/config/config-schema.js';
import { configSchema } from '../../src/app/load-config.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import {
  RotationEngine,
  type RotationEngineDeps,
  type RotationResult,
  type SkipRotation,
} from '../../src/core/rotation/rotation-engine.js';

// The engine's afterFence hook (issue 15 item 2): it runs once the fence is taken and before
// anything else, a skip ends the rotation as `skipped` with its reason and releases the fence,
// and without a skip the protocol goes on. The state store and fence are in-memory fakes; a
// test that reached the target or the provider would fail loudly (their fakes throw).

const config = configSchema.parse({
  state: { url: 'postgres://x@127.0.0.1/x' },
  providers: { local: { type: 'file', path: '/tmp/unused.json' } },
  targets: { main: { host: '127.0.0.1', database: 'x', admin: { username: 'x', password: 'x' } } },
  accounts: [{ name: 'app', target: 'main', role: 'app_role', provider: 'local', secret: 'pg/app' }],
});
const account = config.accounts[0] as AccountConfig;

class FakeFence {
  released = 0;
  runningCalls = 0;
  constructor(private readonly log: string[]) {}
  /** The first thing the protocol reads after the hook (the unfinished rotation taken with the lock). */
  get runningAtAcquire(): null {
    this.runningCalls++;
    this.log.push('fence.runningAtAcquire');
    throw new Error('the protocol went on past the hook');
  }
  async release(): Promise<void> {
    this.released++;
    this.log.push('fence.release');
  }
}

function engine(opts: { fenceFree: boolean }) {
  const log: string[] = [];
  const fence = new FakeFence(log);
  const observed: RotationResult[] = [];
  const refused: string[] = [];
  const state = {
    async tryAcquireFence() {
      log.push('tryAcquireFence');
      return opts.fenceFree ? fence : null;
    },
    async recordRefusal(_a: unknown, error: string) {
      refused.push(error);
    },
  };
  const untouchable = new Proxy(
    {},
    {
      get: (_t, prop) => () => {
        throw new Error(`unexpected call ${String(prop)}`);
      },
    },
  );
  const redactor = new Redactor();
  const deps = {
    state,
    targets: untouchable,
    provider: () => untouchable,
    redactor,
    log: createLogger(redactor, { destination: new PassThrough() }),
    defaults: config.defaults,
    onResult: (r: RotationResult) => observed.push(r),
  } as unknown as RotationEngineDeps;
  return { engine: new RotationEngine(deps), log, fence, observed, refused };
}

describe('RotationEngine afterFence hook', () => {
  it('a skip ends the rotation as skipped, under the fence, with the reason and the rotation that did the work', async () => {
    const t = engine({ fenceFree: true });
    const skip: SkipRotation = {
      reason: 'a rotation that started after this request already succeeded',
      rotationId: 'r-1',
      sessionsEnded: 2,
    };
    const afterFence = async () => {
      t.log.push('afterFence');
      return skip;
    };
    const result = await t.engine.rotate(account, { afterFence });
    expect(result).toMatchObject({
      account: 'app',
      target: 'main',
      outcome: 'skipped',
      detail: skip.reason,
      rotationId: 'r-1',
      sessionsEnded: 2,
      error: null,
      resumed: false,
      role: null,
    });
    expect(t.log).toEqual(['tryAcquireFence', 'afterFence', 'fence.release']);
    expect(t.fence.runningCalls).toBe(0);
    expect(t.observed.map((r) => r.outcome)).toEqual(['skipped']);
    expect(t.refused).toEqual([]);
  });

  it('no skip: the protocol goes on after the hook', async () => {
    const t = engine({ fenceFree: true });
    const result = await t.engine.rotate(account, {
      afterFence: async () => {
        t.log.push('afterFence');
        return null;
      },
    });
    expect(t.log.slice(0, 3)).toEqual(['tryAcquireFence', 'afterFence', 'fence.runningAtAcquire']);
    expect(result.outcome).toBe('failed');
    expect(result.detail).toBeNull();
    expect(t.fence.released).toBe(1);
  });

  it('a busy account never runs the hook', async () => {
    const t = engine({ fenceFree: false });
    let called = false;
    const result = await t.engine.rotate(account, {
      afterFence: async () => {
        called = true;
        return null;
      },
    });
    expect(result.outcome).toBe('busy');
    expect(called).toBe(false);
  });
});
