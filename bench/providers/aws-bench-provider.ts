import { spawnSync } from 'node:child_process';
import { MOTO_CREDENTIALS, startMotoServer } from '../../test/support/moto-server.js';
import type { BenchProvider } from '../bench-provider.js';

/** AWS Secrets Manager on a moto server of its own (loopback, free port), fake credentials via env. */
export const benchProvider: BenchProvider = {
  name: 'aws',
  async setup() {
    const bin = process.env.PGROTATE_MOTO_SERVER ?? 'moto_server';
    if (spawnSync(bin, ['--help'], { stdio: 'ignore' }).status !== 0) {
      throw new Error(
        `moto is not installed (\`${bin}\` not found): run scripts/install/40-moto.sh (pip install "moto[server]")`,
      );
    }
    const server = await startMotoServer();
    return {
      config: { type: 'aws-secrets-manager', region: 'us-east-1', endpoint: server.endpoint },
      env: { ...MOTO_CREDENTIALS },
      stop: () => server.stop(),
    };
  },
};
