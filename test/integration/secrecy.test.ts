import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { createPgFixture, type CliRun, type PgFixture } from '../support/pg-fixture.js';
import { passwordsIn } from '../support/invariants.js';
import { pgServer } from '../support/provided.js';

// Invariant I4 on a server with log_statement=all and pg_stat_statements: after rotations
// (successful and failed) no generated plaintext appears in the server log, pg_stat_statements,
// the state tables, pgrotate's log output or its error messages.

describe('secrecy (I4)', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  it('no plaintext in the server log, pg_stat_statements, state tables, logs or errors', async () => {
    const su = await fx.superClient(fx.targetDb);
    await su.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await su.end();
    const one = await fx.createRole(`sec_${fx.suffix}`);
    const a = await fx.createRole(`sec_a_${fx.suffix}`);
    const b = await fx.createRole(`sec_b_${fx.suffix}`);
    const { path, env } = fx.writeConfig({
      accounts: [
        { name: 'one', target: 'main', role: one, provider: 'local', secret: 'pg/one' },
        {
          name: 'pair',
          target: 'main',
          strategy: 'alternating',
          roles: [a, b],
          gracePeriod: '1h',
          provider: 'local',
          secret: 'pg/pair',
        },
        { name: 'broken', target: 'main', role: `missing_${fx.suffix}`, provider: 'local', secret: 'pg/broken' },
      ],
      defaults: { password: { length: 24, alphabet: 'alphanumeric-symbols' } },
    });
    const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
    const runs: CliRun[] = [];
    const passwords = new Set<string>();
    for (let i = 0; i < 3; i++) {
      runs.push(
        await fx.cli(['--config', path, 'rotate', 'one', 'pair', '--json'], { ...env, PGROTATE_LOG_LEVEL: 'debug' }),
      );
      for (const s of ['pg/one', 'pg/pair']) for (const p of await passwordsIn(provider, s)) passwords.add(p);
    }
    runs.push(await fx.cli(['--config', path, 'rotate', '--all'], env));
    runs.push(await fx.cli(['--config', path, 'verify'], env));
    runs.push(await fx.cli(['--config', path, 'status', '--json'], env));
    runs.push(await fx.cli(['--config', path, 'history', 'one', '--json'], env));
    for (const s of ['pg/one', 'pg/pair']) for (const p of await passwordsIn(provider, s)) passwords.add(p);
    expect(passwords.size).toBeGreaterThanOrEqual(8);
    expect(runs[3]?.code).toBe(1); // 'broken' failed: its error text is in the haystack too

    const serverLog = readFileSync(fx.server.logFile, 'utf8');
    // The log really records statements (so a leak would show): our ALTER ROLEs are there, as verifiers.
    expect(serverLog).toMatch(new RegExp(`ALTER ROLE "${one}" PASSWORD 'SCRAM-SHA-256\\$4096:`));
    const c = await fx.superClient(fx.targetDb);
    const pss = (await c.query<{ query: string }>('SELECT query FROM pg_stat_statements')).rows
      .map((r) => r.query)
      .join('\n');
    await c.end();
    const sc = await fx.rotatorClient(fx.stateDb);
    const tables = (
      await sc.query<{ t: string }>(`SELECT tablename AS t FROM pg_tables WHERE schemaname = 'pgrotate'`)
    ).rows.map((r) => r.t);
    let state = '';
    for (const t of tables)
      state += (await sc.query<{ j: string }>(`SELECT row_to_json(x)::text AS j FROM pgrotate.${t} x`)).rows
        .map((r) => r.j)
        .join('\n');
    await sc.end();
    expect(state).toContain('rotation.succeeded');
    const cliOutput = runs.map((r) => `${r.stdout}\n${r.stderr}`).join('\n');
    expect(cliOutput).toContain('"msg":"rotation succeeded"');

    const haystacks = { serverLog, pgStatStatements: pss, stateTables: state, cliOutputAndLogs: cliOutput };
    for (const [where, text] of Object.entries(haystacks)) {
      for (const pw of passwords) expect(text.includes(pw), `a generated password appears in ${where}`).toBe(false);
    }
    // The admin and state passwords never appear either.
    for (const text of Object.values(haystacks)) expect(text.includes(fx.rotatorPassword)).toBe(false);
  });
});
