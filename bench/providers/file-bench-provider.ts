import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchProvider } from '../bench-provider.js';

/** The file provider: no server, the floor for provider overhead. */
export const benchProvider: BenchProvider = {
  name: 'file',
  async setup() {
    const dir = mkdtempSync(join(tmpdir(), 'pgrotate-bench-file-'));
    return {
      config: { type: 'file', path: join(dir, 'secrets.json') },
      stop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
};
