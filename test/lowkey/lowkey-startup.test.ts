import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { start, type LowkeyStartFailure } from '../services/lowkey-vault-service.js';
import type { LowkeyVaultInfo } from '../support/lowkey-vault-server.js';
import { lowkeyInfoOrThrow } from './azure-lowkey-harness.js';

// When the run expects Lowkey Vault (the `lowkey` service is wanted) and it does not start, the
// Lowkey tests must fail with the emulator's own output, never pass or be skipped quietly.

describe('Lowkey Vault expected but not starting', () => {
  const saved = process.env.LOWKEY_VAULT_JAR;
  afterEach(() => {
    if (saved === undefined) delete process.env.LOWKEY_VAULT_JAR;
    else process.env.LOWKEY_VAULT_JAR = saved;
  });

  it("a jar that Java cannot run: every Lowkey test gets the emulator's own output as its error", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgrotate-lowkey-broken-'));
    const jar = join(dir, 'lowkey-vault-app.jar');
    writeFileSync(jar, 'this is not a jar');
    process.env.LOWKEY_VAULT_JAR = jar;
    const started = await start((name) => name === 'lowkey');
    const info = started.lowkey?.info as LowkeyVaultInfo | LowkeyStartFailure;
    expect(info).toHaveProperty('startupError');
    // Java's own words, from the emulator process's output.
    expect((info as LowkeyStartFailure).startupError).toMatch(
      /exited with code \d+ during startup; its output:[\s\S]*(Invalid or corrupt jarfile|Error: )/,
    );
    expect(() => lowkeyInfoOrThrow(info)).toThrow(/Lowkey Vault was expected but did not start: .*exited with code/);
    await started.lowkey?.stop();
  });

  it('not wanted (a quick run that leaves it out): not started, nothing handed to tests', async () => {
    expect(await start((name) => name === 'pg15')).toEqual({});
  });
});
