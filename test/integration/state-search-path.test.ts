import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redactor } from '../../src/core/logging/redactor.js';
import { migrate } from '../../src/core/state/migrations.js';
import { StateStore } from '../../src/core/state/state-store.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { pgServer } from '../support/provided.js';

// The state statements name no schema: a StateStore's connections resolve them in its own schema
// through the search_path of their startup packet, which wins over one set for the login. Two
// stores on one database never see each other's rows, and the migration's SET LOCAL leaves a
// pooled connection's search_path as it was.

describe('state connections resolve names in the state schema', () => {
  let fx: PgFixture;
  const stores: StateStore[] = [];
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await fx?.cleanup();
  });

  const connection = () => ({
    host: fx.server.host,
    port: fx.server.port,
    user: fx.rotator,
    password: fx.rotatorPassword,
    database: fx.stateDb,
  });
  const open = async (schema: string) => {
    const store = await StateStore.open({ connection: connection(), schema, redactor: new Redactor() });
    stores.push(store);
    return store;
  };

  it('a store reads and writes its own schema even when the login has another search_path', async () => {
    const a = `spa_${fx.suffix}`;
    const b = `spb_${fx.suffix}`;
    const storeB = await open(b);
    // The login's own default points at the other store's tables: unqualified names would land there.
    const su = await fx.superClient(fx.stateDb);
    try {
      await su.query(`ALTER ROLE "${fx.rotator}" IN DATABASE "${fx.stateDb}" SET search_path = "${b}"`);
    } finally {
      await su.end();
    }
    const storeA = await open(a);
    const account = { name: `acct-${fx.suffix}`, target: 'main', strategy: 'single-user' };
    await storeA.recordRefusal(account, 'target main unreachable', 'tester');

    expect((await storeA.getAccount(account.name))?.lastError).toBe('target main unreachable');
    expect(await storeB.getAccount(account.name)).toBeNull();
    const count = async (schema: string, table: string) =>
      Number((await fx.stateQuery<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".${table}`)).rows[0]?.n);
    expect([await count(a, 'accounts'), await count(a, 'audit_events')]).toEqual([1, 1]);
    expect([await count(b, 'accounts'), await count(b, 'audit_events')]).toEqual([0, 0]);
    expect((await storeA.history(account.name)).map((e) => e.kind)).toEqual(['rotation.refused']);
    expect(await storeB.history(account.name)).toEqual([]);
  });

  it("migrating through a caller's pool leaves that connection's search_path as it was", async () => {
    const pool = new pg.Pool({ ...connection(), max: 1 });
    pool.on('error', () => undefined);
    try {
      const before = (await pool.query<{ search_path: string }>('SHOW search_path')).rows[0]?.search_path;
      expect(await migrate(pool, `spc_${fx.suffix}`)).not.toEqual([]);
      expect((await pool.query<{ search_path: string }>('SHOW search_path')).rows[0]?.search_path).toBe(before);
    } finally {
      await pool.end();
    }
  });
});
