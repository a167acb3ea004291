import { startLowkeyVault } from '../../test/support/lowkey-vault-server.js';
import type { BenchProvider } from '../bench-provider.js';

// Azure Key Vault for the benchmark: a Lowkey Vault emulator of its own (same launcher as the
// tests). Throws with the reason when the emulator's jar is not installed.

export const benchProvider: BenchProvider = {
  name: 'azure',
  async setup() {
    const server = await startLowkeyVault();
    return {
      config: {
        type: 'azure-key-vault',
        vaultUrl: server.vaultUrl,
        credential: { token: 'env:AZ_TOKEN' },
        caFile: server.caFile,
        disableChallengeResourceVerification: true,
      },
      env: { AZ_TOKEN: server.token },
      stop: () => server.stop(),
    };
  },
};
