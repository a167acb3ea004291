import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PgFixture } from './pg-fixture.js';

/**
 * Put `line` at the top of the fixture server's pg_hba.conf (or take it out again) and reload.
 * The server is shared by a test file's tests, so each test names its own role in its line.
 */
export async function setHbaLine(fx: PgFixture, line: string, present: boolean): Promise<void> {
  const file = join(fx.server.dataDir, 'pg_hba.conf');
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== line);
  writeFileSync(file, (present ? [line, ...lines] : lines).join('\n'));
  const c = await fx.superClient();
  try {
    await c.query('SELECT pg_reload_conf()');
  } finally {
    await c.end();
  }
  await new Promise((r) => setTimeout(r, 300)); // the postmaster rereads the file on SIGHUP
}
