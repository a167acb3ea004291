import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileProvider } from '../../providers/file/file-provider.js';
import { createPgFixture, type PgFixture } from '../support/pg-fixture.js';
import { expectCurrentLogsIn, expectNoLostCredential, passwordsIn } from '../support/invariants.js';
import { pgServer } from '../support/provided.js';

// A real process is killed (SIGKILL via PGROTATE_FAILPOINT) after each protocol step; a rerun
// must finish the same rotation, and I1/I2 must hold at both moments.

const STEPS = ['after-stage', 'after-apply', 'after-verify', 'after-promote', 'after-record'] as const;

describe('crash at each step, then resume', () => {
  let fx: PgFixture;
  beforeAll(async () => {
    fx = await createPgFixture(pgServer('pg15'));
  });
  afterAll(async () => {
    await fx?.cleanup();
  });

  for (const strategy of ['single-user', 'alternating'] as const) {
    for (const step of STEPS) {
      it(`${strategy}: killed ${step}`, async () => {
        const name = `c${STEPS.indexOf(step)}${strategy === 'alternating' ? 'alt' : 'one'}`;
        const secret = `pg/${name}`;
        const initial = `initial-${fx.suffix}-password`;
        const roles =
          strategy === 'alternating'
            ? [
                await fx.createRole(`${name}_a_${fx.suffix}`, { password: initial }),
                await fx.createRole(`${name}_b_${fx.suffix}`, { password: initial }),
              ]
            : [await fx.createRole(`${name}_${fx.suffix}`, { password: initial })];
        const account =
          strategy === 'alternating'
            ? { name, target: 'main', strategy, roles, gracePeriod: '1h', provider: 'local', secret }
            : { name, target: 'main', role: roles[0], provider: 'local', secret };
        const { path, env } = fx.writeConfig({ accounts: [account] });
        const provider = new FileProvider({ name: 'local', path: fx.secretsFile });
        const seen = new Set<string>([initial]);

        // One clean rotation first, so there is a current credential to protect.
        expect((await fx.cli(['--config', path, 'rotate', name], env)).code).toBe(0);
        for (const p of await passwordsIn(provider, secret)) seen.add(p);

        const crashed = await fx.cliProcess(['--config', path, 'rotate', name], { ...env, PGROTATE_FAILPOINT: step });
        expect(crashed.signal).toBe('SIGKILL');
        for (const p of await passwordsIn(provider, secret)) seen.add(p);
        await expectNoLostCredential(fx, provider, secret, roles, seen, { allowPrevious: strategy === 'alternating' });

        const rerun = await fx.cliProcess(['--config', path, 'rotate', name, '--json'], env);
        expect(rerun.code, rerun.stderr).toBe(0);
        const result = (
          JSON.parse(rerun.stdout) as { results: Array<{ outcome: string; resumed: boolean; rotationId: string }> }
        ).results[0];
        expect(result?.outcome).toBe('succeeded');
        for (const p of await passwordsIn(provider, secret)) seen.add(p);

        const current = await expectCurrentLogsIn(fx, provider, secret);
        await expectNoLostCredential(fx, provider, secret, roles, seen, { allowPrevious: strategy === 'alternating' });
        expect(await provider.getPending(secret)).toBeNull();
        if (step === 'after-record') {
          // The crash came after the record was complete: the rerun is a new, whole rotation.
          expect(result?.resumed).toBe(false);
        } else {
          // The rerun finished the interrupted rotation rather than starting another.
          expect(result?.resumed).toBe(true);
          expect(current.rotationId).toBe(result?.rotationId);
          const c = await fx.rotatorClient(fx.stateDb);
          const rows = await c.query<{ status: string; attempts: number }>(
            `SELECT status, attempts FROM pgrotate.rotations WHERE id = $1`,
            [result?.rotationId],
          );
          await c.end();
          expect(rows.rows[0]).toEqual({ status: 'succeeded', attempts: 2 });
        }
        if (strategy === 'single-user') {
          // Exactly one password works: the current one.
          for (const p of seen)
            if (p !== current.password) expect(await fx.canLogin(roles[0] as string, p)).toBe(false);
        }
      });
    }
  }
});
