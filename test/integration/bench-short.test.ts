import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureBenchBuilt, runNodeScript } from '../support/run-script.js';
import { REPO_ROOT } from '../support/pg-fixture.js';

// A small `npm run bench` in the test run, so the harness is known to measure what it claims:
// the OpenBao database-engine peer really changes the roles' passwords (SCRAM verifiers), the
// per-rotation counts come from the server log and the proxy (non-zero, at least the verify login),
// the outage reader saw rotations, alternating accounts never refuse a login, and the CLI was
// timed. The figures themselves are judged by the README's full run: this machine may be busy.

const SCRIPT = join(REPO_ROOT, 'dist-bench', 'bench', 'run-bench.js');
const dir = mkdtempSync(join(tmpdir(), 'pgrotate-bench-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface BenchJson {
  accounts: number;
  runs: number;
  rotations_per_s: number;
  peer_openbao_rotations_per_s: number | null;
  ratio_to_openbao: number | null;
  peer_openbao_verified_rotations_per_s: number | null;
  ratio_to_openbao_verified: number | null;
  raw_bound_rotations_per_s: number | null;
  raw_bound_runs_rotations_per_s: number[];
  ratio_to_raw_bound: number | null;
  pg_connections_per_rotation: number | null;
  pg_refused_logins_per_rotation: number | null;
  pg_statements_per_rotation: number | null;
  store_calls_per_rotation: number | null;
  single_user_outage_ms_mean: number | null;
  single_user_outage_ms_max: number | null;
  single_user_outage_rotations: number;
  single_user_window_ms_mean: number | null;
  single_user_window_ms_max: number | null;
  single_user_reader_interval_ms: number | null;
  outage_pass_rotations_per_s: Record<string, number>;
  alternating_failed_logins: number | null;
  alternating_rotations: number | null;
  cli_help_ms: number | null;
  cli_help_rss_mb: number | null;
  cli_rotate_one_ms: number | null;
  providers: Array<{
    provider: string;
    succeeded: number;
    rotations_per_s: number;
    pg_connections_per_rotation: number;
    store_calls_per_rotation: number | null;
    store_cpu_ms_per_rotation: number | null;
  }>;
  peer_openbao: {
    succeeded: number;
    roles_changed_per_run: number[];
    roles_scram_per_run: number[];
    pg_statements_per_rotation: number;
    store_cpu_ms_per_rotation: number | null;
  } | null;
  peer_openbao_verified: {
    succeeded: number;
    roles_changed_per_run: number[];
    logins_proved_per_run: number[];
    pg_role_logins_per_run: number[];
    pg_connections_per_rotation: number;
    cpu_ms_per_rotation: number | null;
  } | null;
  not_measured: Record<string, string>;
  leaks: number;
}

describe('npm run bench (small run)', () => {
  it('measures pgrotate against the OpenBao peer with counts, outage, alternating and CLI figures', async () => {
    ensureBenchBuilt(REPO_ROOT, SCRIPT);
    const jsonFile = join(dir, 'bench.json');
    const args = [
      SCRIPT,
      '--accounts',
      '20',
      '--runs',
      '1',
      '--providers',
      'vault,file',
      '--raw-seconds',
      '1',
      '--alternating-accounts',
      '4',
      '--alternating-rounds',
      '2',
      '--json',
      jsonFile,
    ];
    const { code, stdout, stderr } = await runNodeScript(args[0] as string, args.slice(1), REPO_ROOT);
    const context = `${stdout}\n${stderr.slice(-4000)}`;
    expect(code, context).toBe(0);
    expect(stdout, context).toMatch(/^\s*openbao rotate-role\s+[\d.]+/m);
    expect(stdout, context).toMatch(/^\s*openbao rotate-role \+ verify login\s+[\d.]+/m);
    expect(stdout, context).toMatch(/^\s*raw bound: ALTER ROLE \+ new login\s+[\d.]+/m);
    expect(stdout, context).toMatch(
      /to rotate-role \+ verify login \(the fair peer\): [\d.]+; to the raw bound: [\d.]+/,
    );
    const j = JSON.parse(readFileSync(jsonFile, 'utf8')) as BenchJson;
    expect(j.not_measured, context).toEqual({});
    expect(j.leaks).toBe(0);
    expect(j.accounts).toBe(20);
    expect(j.providers.map((p) => [p.provider, p.succeeded])).toEqual([
      ['vault', 20],
      ['file', 20],
    ]);
    // The peer rotated every role: each one's verifier in pg_authid changed, to a SCRAM-SHA-256 one.
    expect(j.peer_openbao?.succeeded).toBe(20);
    expect(j.peer_openbao?.roles_changed_per_run).toEqual([20]);
    expect(j.peer_openbao?.roles_scram_per_run).toEqual([20]);
    expect(j.peer_openbao_rotations_per_s).toBeGreaterThan(0);
    expect(j.ratio_to_openbao).toBeCloseTo(j.rotations_per_s / (j.peer_openbao_rotations_per_s as number), 2);
    // The fair peer rotated every role again and proved each new password with a login as the
    // role: its own count, and PostgreSQL's log (one authorized connection per peer role).
    const verified = j.peer_openbao_verified;
    expect(verified?.succeeded).toBe(20);
    expect(verified?.roles_changed_per_run).toEqual([20]);
    expect(verified?.logins_proved_per_run).toEqual([20]);
    expect(verified?.pg_role_logins_per_run).toEqual([20]);
    expect(verified?.pg_connections_per_rotation).toBeGreaterThanOrEqual(1);
    expect(verified?.cpu_ms_per_rotation).toBeGreaterThan(0);
    for (const k of [
      'peer_openbao_verified_rotations_per_s',
      'ratio_to_openbao_verified',
      'raw_bound_rotations_per_s',
      'ratio_to_raw_bound',
    ] as const) {
      expect(typeof j[k], k).toBe('number');
      expect(j[k], k).toBeGreaterThan(0);
    }
    expect(j.raw_bound_runs_rotations_per_s).toHaveLength(1);
    const vaultRate = j.providers.find((p) => p.provider === 'vault')?.rotations_per_s as number;
    expect(j.ratio_to_openbao_verified).toBeCloseTo(vaultRate / (j.peer_openbao_verified_rotations_per_s as number), 2);
    expect(j.ratio_to_raw_bound).toBeCloseTo(vaultRate / (j.raw_bound_rotations_per_s as number), 2);
    // ALTER ROLE at least (plus the pool's own statements) for the peer; OpenBao's CPU was read.
    expect(j.peer_openbao?.pg_statements_per_rotation).toBeGreaterThanOrEqual(1);
    expect(j.peer_openbao?.store_cpu_ms_per_rotation).toBeGreaterThan(0);
    // Every pgrotate rotation opens the verify login and runs at least ALTER ROLE and the verify query.
    expect(j.pg_connections_per_rotation).toBeGreaterThanOrEqual(1);
    // Refused logins (the pre-flight probe's) are new connections too, counted within them.
    expect(j.pg_refused_logins_per_rotation).toBeGreaterThanOrEqual(0);
    expect(j.pg_refused_logins_per_rotation).toBeLessThan(j.pg_connections_per_rotation as number);
    expect(j.pg_statements_per_rotation).toBeGreaterThanOrEqual(2);
    expect(j.store_calls_per_rotation).toBeGreaterThanOrEqual(2);
    expect(j.providers.find((p) => p.provider === 'file')?.store_calls_per_rotation).toBeNull();
    expect(j.providers.find((p) => p.provider === 'file')?.pg_connections_per_rotation).toBeGreaterThanOrEqual(1);
    // In the outage pass the reader saw the sampled accounts rotate (8 of them, once each).
    expect(j.single_user_outage_rotations).toBe(8);
    expect(j.single_user_outage_ms_mean).toBeGreaterThanOrEqual(0);
    expect(j.single_user_outage_ms_max).toBeGreaterThanOrEqual(j.single_user_outage_ms_mean as number);
    // The ALTER ROLE → promote window from the audit trail: every rotation, a positive span.
    expect(j.single_user_window_ms_mean).toBeGreaterThan(0);
    expect(j.single_user_window_ms_max).toBeGreaterThanOrEqual(j.single_user_window_ms_mean as number);
    expect(j.single_user_reader_interval_ms).toBeGreaterThan(0);
    expect(j.outage_pass_rotations_per_s.vault).toBeGreaterThan(0);
    expect(j.outage_pass_rotations_per_s['openbao-peer']).toBeGreaterThan(0);
    expect(j.alternating_rotations).toBe(8);
    expect(j.alternating_failed_logins).toBe(0);
    expect(j.cli_help_ms).toBeGreaterThan(0);
    expect(j.cli_help_rss_mb).toBeGreaterThan(10);
    expect(j.cli_rotate_one_ms).toBeGreaterThan(j.cli_help_ms as number);
  }, 240_000);
});
