import type { StartedService } from '../global-setup.js';
import { startLowkeyVault } from '../support/lowkey-vault-server.js';

// Lowkey Vault, the Azure Key Vault emulator, started once per run for the Azure provider's suite
// (test/lowkey/). It is expected whenever the `lowkey` service is wanted: always in the full run
// (PGROTATE_TEST_SERVICES unset), and in a quick run that names it. When it is expected but does
// not start (no jar, wrong Java, a crash), the reason and the emulator's own output are printed
// here and handed to the tests, so every Lowkey test fails with them: the run never passes
// without having run the suite. A quick run that leaves `lowkey` out does not start it.

export const names = ['lowkey'];

/** What the Lowkey tests receive when the emulator was expected but did not start. */
export interface LowkeyStartFailure {
  startupError: string;
}

export async function start(wanted: (name: string) => boolean): Promise<Record<string, StartedService>> {
  if (!wanted('lowkey')) return {};
  try {
    const server = await startLowkeyVault();
    const { stop, ...info } = server;
    return { lowkey: { info, stop } };
  } catch (err) {
    const startupError = err instanceof Error ? err.message : String(err);
    console.error(
      `[global-setup] lowkey: Lowkey Vault was expected (PGROTATE_TEST_SERVICES=${process.env.PGROTATE_TEST_SERVICES ?? '<all>'}) but did not start; every Lowkey test will fail with:\n${startupError}`,
    );
    const failure: LowkeyStartFailure = { startupError };
    return { lowkey: { info: failure, stop: () => undefined } };
  }
}
