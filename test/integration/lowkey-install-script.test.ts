import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// scripts/install/50-lowkey-vault.sh: where the Lowkey Vault jar comes from, in order
// (LOWKEY_VAULT_JAR, the cached jar, ../shared/tools/lowkey-vault/build.sh, else instructions),
// and that it fails only when the Lowkey suite is requested. The shared folder is replaced by
// PGROTATE_SHARED_DIR with a stand-in build.sh, so no Maven build runs here.

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'install', '50-lowkey-vault.sh');

function run(env: Record<string, string | undefined>) {
  const home = env.HOME ?? mkdtempSync(join(tmpdir(), 'pgrotate-lk-home-'));
  const base: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home, PGROTATE_SHARED_DIR: join(home, 'no-shared') };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  const r = spawnSync('bash', [SCRIPT], { env: base, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr, home };
}

/** A stand-in for ../shared/tools/lowkey-vault: its build.sh writes a jar where the real one does. */
function fakeShared(ok: boolean): string {
  const shared = mkdtempSync(join(tmpdir(), 'pgrotate-lk-shared-'));
  const dir = join(shared, 'tools', 'lowkey-vault');
  mkdirSync(dir, { recursive: true });
  const body = ok
    ? 'jar="${LOWKEY_VAULT_JAR:-$HOME/.cache/pgrotate/lowkey-vault/lowkey-vault-app.jar}"\nmkdir -p "$(dirname "$jar")"\necho built > "$jar"\necho "$jar"\n'
    : 'echo "[lowkey-vault build] ERROR: mvn not found on PATH" >&2\nexit 1\n';
  writeFileSync(join(dir, 'build.sh'), `#!/usr/bin/env bash\nset -euo pipefail\n${body}`, { mode: 0o555 });
  return shared;
}

const listing = (dir: string) => readdirSync(dir, { recursive: true }).map(String).sort();

describe('scripts/install/50-lowkey-vault.sh', () => {
  it('LOWKEY_VAULT_JAR first, when that file exists', () => {
    const jar = join(mkdtempSync(join(tmpdir(), 'pgrotate-lk-jar-')), 'given.jar');
    writeFileSync(jar, 'jar');
    const r = run({ LOWKEY_VAULT_JAR: jar, PGROTATE_SHARED_DIR: fakeShared(false) });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`using LOWKEY_VAULT_JAR=${jar}`);
  });

  it('then the cached jar, without building', () => {
    const home = mkdtempSync(join(tmpdir(), 'pgrotate-lk-home-'));
    mkdirSync(join(home, '.cache', 'pgrotate', 'lowkey-vault'), { recursive: true });
    writeFileSync(join(home, '.cache', 'pgrotate', 'lowkey-vault', 'lowkey-vault-app.jar'), 'jar');
    const r = run({ HOME: home, PGROTATE_SHARED_DIR: fakeShared(false) });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('using the cached jar');
  });

  it('then a build from the shared folder, which is left untouched', () => {
    const shared = fakeShared(true);
    const before = listing(shared);
    const r = run({ PGROTATE_SHARED_DIR: shared });
    expect(r.code, r.err).toBe(0);
    const jar = join(r.home, '.cache', 'pgrotate', 'lowkey-vault', 'lowkey-vault-app.jar');
    expect(r.out).toContain(`built ${jar}`);
    expect(statSync(jar).size).toBeGreaterThan(0);
    expect(listing(shared)).toEqual(before);
  });

  it('no jar and no build, full run (PGROTATE_TEST_SERVICES unset): fails, saying how to get a release jar', () => {
    const r = run({ PGROTATE_TEST_SERVICES: undefined });
    expect(r.code).toBe(1);
    expect(r.err).toContain('https://github.com/nagyesta/lowkey-vault');
    expect(r.err).toContain('docker cp lowkey:/lowkey-vault.jar');
    expect(r.err).toContain('LOWKEY_VAULT_JAR');
    expect(r.err).toContain('the test run needs it');
  });

  it('a failed build, with the Lowkey suite named in PGROTATE_TEST_SERVICES: fails and shows the build output', () => {
    const r = run({ PGROTATE_SHARED_DIR: fakeShared(false), PGROTATE_TEST_SERVICES: 'pg15, lowkey' });
    expect(r.code).toBe(1);
    expect(r.err).toContain('mvn not found on PATH');
    expect(r.err).toContain('the build from');
  });

  it('a quick run without the Lowkey suite: not installed, exit 0', () => {
    const r = run({ PGROTATE_TEST_SERVICES: 'pg15,bao' });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('not needed for PGROTATE_TEST_SERVICES=pg15,bao');
  });
});
