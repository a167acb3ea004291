import type { StartedService } from '../global-setup.js';
import { findLowkeyJar, startLowkeyVault } from '../support/lowkey-vault-server.js';

// Lowkey Vault, the Azure Key Vault emulator, started once per run for the Azure provider's
// tests (test/lowkey/). Its jar is not on Maven Central (see scripts/install/50-lowkey-vault.sh);
// without one the service is not started and says so, and the Lowkey suite reports it.

export const names = ['lowkey'];

export async function start(wanted: (name: string) => boolean): Promise<Record<string, StartedService>> {
  if (!wanted('lowkey')) return {};
  if (!findLowkeyJar()) {
    console.warn('[global-setup] lowkey: Lowkey Vault jar not installed (see scripts/install/50-lowkey-vault.sh); the Azure emulator suite (npm run test:lowkey) needs it');
    return {};
  }
  const server = await startLowkeyVault();
  const { stop, ...info } = server;
  return { lowkey: { info, stop } };
}
