import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncAccounts } from '../../jobs/account-sync.js';
import { type PgrotateConfig } from '../../src/core/config/config-schema.js';
import { configSchema } from '../../src/app/load-config.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { StateStore } from '../../src/core/state/state-store.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// Account sync against a real state database: new accounts get a first due time, a changed
// schedule is re-planned, accounts gone from the config stop being due, and nothing else is
// touched. Names and schedule keys (cron keys contain spaces) travel as newline-separated text.

describe('account sync', () => {
  let fx: PgFixture;
  let state: StateStore;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
    state = await StateStore.open({
      connection: {
        host: fx.server.host,
        port: fx.server.port,
        user: fx.server.superuser,
        password: fx.server.superPassword,
        database: fx.stateDb,
      },
      schema: 'pgrotate',
      redactor: new Redactor(),
    });
  });
  afterAll(async () => {
    await state?.close();
    await fx?.cleanup();
  });

  const config = (accounts: Array<{ name: string; schedule?: unknown }>): PgrotateConfig =>
    configSchema.parse({
      state: { url: 'postgres://x@127.0.0.1/x' },
      providers: { local: { type: 'file', path: '/tmp/unused.json' } },
      targets: { main: { host: '127.0.0.1', database: 'x', admin: { username: 'x', password: 'x' } } },
      accounts: accounts.map((a) => ({
        target: 'main',
        role: `r_${a.name.replace(/\W/g, '_')}`,
        provider: 'local',
        secret: `pg/${a.name}`,
        ...a,
      })),
    });
  const rows = async () =>
    new Map(
      (
        await fx.stateQuery<{ name: string; schedule: string; next_due_at: Date | null }>(
          'SELECT name, schedule, next_due_at FROM pgrotate.accounts',
        )
      ).rows.map((r) => [r.name, r]),
    );

  it('inserts, re-plans, retires, and leaves unchanged accounts alone', async () => {
    const now = new Date();
    const first = await syncAccounts(
      state,
      config([
        { name: 'a.1' },
        { name: 'b-2', schedule: { cron: '0  3 * * 1', window: '2h' } },
        { name: 'c_3' },
        { name: 'm', schedule: 'manual' },
      ]),
      now,
    );
    expect(first).toEqual({ inserted: 4, replanned: 0, retired: 0 });
    const before = await rows();
    expect(before.get('b-2')?.schedule).toBe('cron:0 3 * * 1:7200000');
    expect(before.get('a.1')?.next_due_at).not.toBeNull();
    expect(before.get('m')?.next_due_at).toBeNull();

    expect(
      await syncAccounts(
        state,
        config([
          { name: 'a.1' },
          { name: 'b-2', schedule: { cron: '0 3 * * 1', window: '2h' } },
          { name: 'c_3' },
          { name: 'm', schedule: 'manual' },
        ]),
      ),
    ).toEqual({
      inserted: 0,
      replanned: 0,
      retired: 0,
    });

    // a.1 gets a new schedule, c_3 leaves the config, d is new.
    const third = await syncAccounts(
      state,
      config([
        { name: 'a.1', schedule: { every: '7d' } },
        { name: 'b-2', schedule: { cron: '0 3 * * 1', window: '2h' } },
        { name: 'm', schedule: 'manual' },
        { name: 'd' },
      ]),
    );
    expect(third).toEqual({ inserted: 1, replanned: 1, retired: 1 });
    const after = await rows();
    expect(after.get('a.1')?.schedule).toBe('every:604800000');
    expect(after.get('c_3')?.next_due_at).toBeNull();
    expect(after.get('c_3')?.schedule).toBe('not-configured');
    expect(after.get('b-2')?.next_due_at?.getTime()).toBe(before.get('b-2')?.next_due_at?.getTime());
    expect(after.get('d')?.next_due_at).not.toBeNull();

    // An empty config retires everything that is still due.
    expect((await syncAccounts(state, config([]))).retired).toBe(3);
  });
});
