import { defineConfig } from 'vitest/config';

// The Azure Key Vault provider's suite against Lowkey Vault (an Azure Key Vault emulator). Opt-in
// (`npm run test:lowkey`) because the emulator's jar is not served by any registry this project
// installs from: put it at ~/.cache/pgrotate/lowkey-vault/lowkey-vault-app.jar or set
// LOWKEY_VAULT_JAR (see scripts/install/50-lowkey-vault.sh).
process.env.PGROTATE_TEST_SERVICES ??= 'pg15,lowkey';

export default defineConfig({
  test: {
    include: ['test/lowkey/**/*.lowkey.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 240_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
