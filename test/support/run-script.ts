import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** What a finished child process printed, and how it ended. */
export interface ScriptRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `node script ...args` in `cwd` to its end, collecting its output (the bench harnesses' tests). */
export function runNodeScript(script: string, args: string[], cwd: string): Promise<ScriptRun> {
  return new Promise<ScriptRun>((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
}

/** Compile the bench harnesses (tsconfig.bench.json) unless `script` is newer than every bench source. */
export function ensureBenchBuilt(repoRoot: string, script: string): void {
  const benchDir = join(repoRoot, 'bench');
  const sources = readdirSync(benchDir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(benchDir, f));
  const built = existsSync(script) ? statSync(script).mtimeMs : 0;
  if (built && sources.every((s) => statSync(s).mtimeMs <= built)) return;
  const res = spawnSync(
    process.execPath,
    [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.bench.json'],
    { cwd: repoRoot, encoding: 'utf8' },
  );
  if (res.status !== 0) throw new Error(`tsc -p tsconfig.bench.json failed: ${res.stdout}${res.stderr}`);
  // The state migrations are .sql files, which tsc does not copy (npm run build:bench does both).
  const sql = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'copy-sql.mjs'), 'dist-bench'], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  if (sql.status !== 0) throw new Error(`copy-sql.mjs dist-bench failed: ${sql.stdout}${sql.stderr}`);
}
