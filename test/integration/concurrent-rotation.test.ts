import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import { StateStore } from '../../src/core/state/state-store.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { expectCurrentLogsIn } from '../support/invariants.js';
import { pgServer } from '../support/provided.js';
import { migrate, stateMigrations } from '../../src/core/state/migrations.js';
import pg from 'pg';

const MIGRATIONS = stateMigrations();

describe('invariant I3: one rotation of an account at a time', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it('two processes rotating the same account at once: exactly one rotates, the other reports in progress', async () => {
    const role = await fx.createRole(`race_${fx.suffix}`);
    const { path, env } = fx.writeConfig({
      accounts: [{ name: 'race', target: 'main', role, provider: 'local', secret: 'pg/race' }],
    });
    // The first process pauses inside its rotation so that the second surely overlaps it.
    const first = fx.cliProcess(['--config', path, 'rotate', 'race', '--json'], {
      ...env,
      PGROTATE_FAILPOINT: 'pause-after-stage:2500',
    });
    await new Promise((r) => setTimeout(r, 1200));
    const second = await fx.cliProcess(['--config', path, 'rotate', 'race', '--json'], env);
    const a = await first;
    expect(a.code, a.stderr).toBe(0);
    expect(second.code).toBe(3);
    const out = JSON.parse(second.stdout) as { results: Array<{ outcome: string; error: { message: string } }> };
    expect(out.results[0]?.outcome).toBe('busy');
    expect(out.results[0]?.error.message).toMatch(/account race: a rotation is already in progress/);

    const c = await fx.rotatorClient(fx.stateDb);
    const events = await c.query<{ kind: string }>(
      `SELECT kind FROM pgrotate.audit_events WHERE account = 'race' AND kind IN ('rotation.started', 'rotation.succeeded')`,
    );
    await c.end();
    expect(events.rows.map((r) => r.kind).sort()).toEqual(['rotation.started', 'rotation.succeeded']);
    await expectCurrentLogsIn(fx, new FileProvider({ name: 'local', path: fx.secretsFile }), 'pg/race');
  });

  it('the fence is held per account and released with the connection that holds it', async () => {
    const store = await StateStore.open({
      connection: {
        host: fx.server.host,
        port: fx.server.port,
        user: fx.rotator,
        password: fx.rotatorPassword,
        database: fx.stateDb,
      },
      schema: 'pgrotate',
      redactor: new Redactor(),
    });
    try {
      const f1 = await store.tryAcquireFence('acct-1');
      expect(f1).not.toBeNull();
      expect(await store.tryAcquireFence('acct-1')).toBeNull();
      const other = await store.tryAcquireFence('acct-2');
      expect(other).not.toBeNull();
      await other?.release();
      await f1?.release();
      const again = await store.tryAcquireFence('acct-1');
      expect(again).not.toBeNull();
      await again?.release();
    } finally {
      await store.close();
    }
  });

  it('migrations run concurrently from many processes apply each version once', async () => {
    const su = await fx.superClient();
    const db = `m_${fx.suffix}`;
    await su.query(`CREATE DATABASE ${db} OWNER ${fx.rotator}`);
    await su.end();
    const pools = Array.from(
      { length: 6 },
      () =>
        new pg.Pool({
          host: fx.server.host,
          port: fx.server.port,
          user: fx.rotator,
          password: fx.rotatorPassword,
          database: db,
          max: 2,
        }),
    );
    // An idle connection ended by the server (57P01) must not become an unhandled 'error' event.
    for (const p of pools) p.on('error', () => undefined);
    try {
      const applied = await Promise.all(pools.map((p) => migrate(p, 'pgrotate')));
      const versions = MIGRATIONS.map((m) => m.version);
      expect(applied.flat().sort((a, b) => a - b)).toEqual(versions);
      const rows = await pools[0]?.query<{ version: number }>(
        'SELECT version FROM pgrotate.schema_migrations ORDER BY version',
      );
      expect(rows?.rows.map((r) => r.version)).toEqual(versions);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
      const su2 = await fx.superClient();
      await su2.query(`DROP DATABASE ${db} WITH (FORCE)`);
      await su2.end();
    }
  });
});
