import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// What every CronJob run, every operator's command and every test that spawns the CLI pays:
// the wall time and peak memory of `pgrotate --help` (start-up alone), and of rotating one
// account end to end with the file provider (start-up, config, state database, one rotation).

export interface CliFigures {
  cli_help_ms: number;
  cli_help_rss_mb: number;
  cli_rotate_one_ms: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Run the CLI once: wall ms and peak RSS in MB (from /usr/bin/time -v when present). */
function runCli(
  main: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): { ms: number; rssMb: number | null; status: number | null; output: string } {
  const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
  const t0 = process.hrtime.bigint();
  // /usr/bin/time adds a fork+exec of its own (about a millisecond); the wall time is still the CLI's.
  const res = timeBin
    ? spawnSync(timeBin, ['-v', process.execPath, main, ...args], { env, encoding: 'utf8' })
    : spawnSync(process.execPath, [main, ...args], { env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(res.stderr ?? '')?.[1];
  return {
    ms,
    rssMb: rss ? Number(rss) / 1024 : null,
    status: res.status,
    output: `${res.stdout ?? ''}${res.stderr ?? ''}`,
  };
}

/**
 * `--help` `helpRuns` times (median wall, max RSS), then `rotate <one account>` with the file
 * provider: one untimed run (it creates the state schema), then the median of `rotateRuns`.
 */
export function measureCli(opts: {
  repoRoot: string;
  state: { host: string; port: number; database: string; user: string };
  target: { host: string; port: number; database: string; user: string };
  adminPassword: string;
  role: string;
  helpRuns?: number;
  rotateRuns?: number;
  /** Write the config as block YAML (what operators write) instead of JSON (what the bench uses by default). */
  yaml?: (value: unknown) => string;
}): CliFigures {
  const main = join(opts.repoRoot, 'dist', 'src', 'entry', 'cli', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build`);
  const env = { ...process.env, BENCH_CLI_ADMIN_PASSWORD: opts.adminPassword, PGROTATE_CONFIG: '' };
  const help = Array.from({ length: opts.helpRuns ?? 5 }, () => runCli(main, ['--help'], env));
  const badHelp = help.find((h) => h.status !== 0);
  if (badHelp) throw new Error(`pgrotate --help exited ${badHelp.status}: ${badHelp.output.slice(0, 500)}`);
  const dir = mkdtempSync(join(tmpdir(), 'pgrotate-bench-cli-'));
  try {
    const config = join(dir, 'pgrotate.yaml');
    // JSON is YAML: by default the config is written as JSON so no YAML library is needed here
    // (the CLI then loads none either); `yaml` measures the config as operators write it.
    const format = opts.yaml ?? ((value: unknown) => JSON.stringify(value));
    writeFileSync(
      config,
      format({
        state: {
          url: `postgres://${opts.state.user}@${opts.state.host}:${opts.state.port}/${opts.state.database}`,
          password: 'env:BENCH_CLI_ADMIN_PASSWORD',
          schema: 'bench_cli',
        },
        providers: { local: { type: 'file', path: join(dir, 'secrets.json') } },
        targets: {
          main: {
            host: opts.target.host,
            port: opts.target.port,
            database: opts.target.database,
            sslmode: 'disable',
            admin: { username: opts.target.user, password: 'env:BENCH_CLI_ADMIN_PASSWORD' },
          },
        },
        accounts: [{ name: 'cli-one', target: 'main', role: opts.role, provider: 'local', secret: 'bench/cli-one' }],
      }),
    );
    const rotate = () => {
      const r = runCli(main, ['rotate', 'cli-one', '--config', config], env);
      if (r.status !== 0) throw new Error(`pgrotate rotate cli-one exited ${r.status}: ${r.output.slice(0, 800)}`);
      return r.ms;
    };
    rotate();
    const rotations = Array.from({ length: opts.rotateRuns ?? 3 }, rotate);
    return {
      cli_help_ms: Math.round(median(help.map((h) => h.ms)) * 10) / 10,
      cli_help_rss_mb: Math.round(Math.max(...help.map((h) => h.rssMb ?? 0)) * 10) / 10,
      cli_rotate_one_ms: Math.round(median(rotations) * 10) / 10,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
