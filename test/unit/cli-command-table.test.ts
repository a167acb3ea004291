import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLI_OPTIONS } from '../../src/entry/cli/cli-options.js';
import { GLOBAL_OPTIONS, synopsis, usageText } from '../../src/entry/cli/command-help.js';
import { COMMANDS } from '../../src/entry/cli/command-table.js';
import { runCli } from '../../src/entry/cli/main.js';

// The command table (src/entry/cli/command-table.ts) is the one list of commands: docs/commands.md's
// synopsis, `--help` and `pgrotate COMMAND --help` must say what it says.

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The lines of the first code block under "## Commands" in docs/commands.md. */
function documentedSynopsis(): string[] {
  const text = readFileSync(join(ROOT, 'docs', 'commands.md'), 'utf8');
  const block = /## Commands\n+```\n([\s\S]*?)```/.exec(text);
  if (!block?.[1]) throw new Error('docs/commands.md has no code block under "## Commands"');
  return block[1].split('\n').filter((line) => line.trim() !== '');
}

/** Run the CLI in-process with a config path that does not exist (nothing here may read it). */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const env = { PGROTATE_CONFIG: '/nonexistent/pgrotate-h26.yaml' };
  const code = await runCli(args, { stdout, stderr, env, cwd: '/nonexistent' });
  return { code, stdout: out, stderr: err };
}

describe('the CLI command table', () => {
  it("docs/commands.md's synopsis lists exactly the table's commands and options, in its order", () => {
    expect(documentedSynopsis()).toEqual(COMMANDS.map(synopsis));
  });

  it('every option the parser accepts is documented by a command or globally, and commands name each option once', () => {
    const documented = new Set([...COMMANDS.flatMap((c) => c.options), ...GLOBAL_OPTIONS].map((o) => o.name));
    expect([...documented].sort()).toEqual(Object.keys(CLI_OPTIONS).sort());
    for (const command of COMMANDS) {
      const names = command.options.map((o) => o.name);
      expect(new Set(names).size, command.name).toBe(names.length);
    }
  });

  it('`pgrotate --help` lists every command of the table and exits 0', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(usageText());
    for (const command of COMMANDS) expect(r.stdout).toContain(`  ${synopsis(command)}\n`);
  });

  it.each(COMMANDS.map((c) => [c.name, c] as const))(
    '`pgrotate %s --help` prints its synopsis and options, exits 0, reads no config',
    async (name, command) => {
      for (const args of [
        [name, '--help'],
        ['-h', name],
      ]) {
        const r = await cli(args);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toBe('');
        expect(r.stdout.startsWith(`Usage: ${synopsis(command)}\n\n${command.summary}\n`), r.stdout).toBe(true);
        for (const option of [...command.options, ...GLOBAL_OPTIONS])
          expect(r.stdout).toMatch(
            new RegExp(`^ {2}(-h, )?--${option.name}\\b.* {3}${option.help.replace(/[$.()|]/g, '\\$&')}$`, 'm'),
          );
        // Only this command's synopsis, not the whole list.
        for (const other of COMMANDS.filter((c) => c !== command)) expect(r.stdout).not.toContain(synopsis(other));
      }
    },
  );

  it('an unknown command with --help prints the full usage (exit 0); without it, exit 2', async () => {
    expect(await cli(['no-such', '--help'])).toEqual({ code: 0, stdout: usageText(), stderr: '' });
    const r = await cli(['no-such']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`pgrotate: unknown command "no-such"\n\n${usageText()}`);
  });

  it("a wrong number of arguments is refused from the table's arity, before the config is read", async () => {
    for (const [args, message] of [
      [['worker', 'x'], 'worker takes no arguments (got 1)'],
      [['serve', 'x', 'y'], 'serve takes no arguments (got 2)'],
      [['status', 'x'], 'status takes no arguments (got 1)'],
      [['history', 'a', 'b'], 'history: name exactly one ACCOUNT'],
      [['audit'], 'audit: name exactly one TARGET'],
      [['audit', ''], 'audit: the target name is empty'],
      [
        ['audit', 'main', '--fail-on', 'extreme'],
        '--fail-on must be one of low, medium, high, critical (not "extreme")',
      ],
      [['offboard', ' '], 'offboard: the principal is empty'],
    ] as const) {
      const r = await cli([...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toBe(`pgrotate: ${message}\n`);
    }
  });
});
