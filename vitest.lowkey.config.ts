import { defineConfig } from 'vitest/config';

// Only the Azure Key Vault provider's suite against Lowkey Vault (an Azure Key Vault emulator),
// with only the services it needs: `npm run test:lowkey`. The same files also run in `npm test` /
// `npm run test:full` (vitest.config.ts), where the emulator is started by the same global setup.
process.env.PGROTATE_TEST_SERVICES ??= 'pg15,lowkey';

export default defineConfig({
  test: {
    include: ['test/lowkey/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 240_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
