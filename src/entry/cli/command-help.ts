import type { Command, OptionDoc } from './command-spec.js';
import { COMMANDS } from './command-table.js';

/** The options every command takes. */
export const GLOBAL_OPTIONS: readonly OptionDoc[] = [
  { name: 'config', arg: 'FILE', help: 'config file (else $PGROTATE_CONFIG, else ./pgrotate.yaml)' },
  { name: 'help', help: 'this text' },
  { name: 'version', help: 'the version of pgrotate' },
];

const EXIT_CODES = `Exit codes: 0 everything asked for succeeded; 1 something failed; 2 bad usage or config;
3 an account was busy (rotation in progress elsewhere).
`;

/** `--name ARG` (with `-h, ` before `--help`). */
function flag(option: OptionDoc): string {
  const long = `--${option.name}${option.arg ? ` ${option.arg}` : ''}`;
  return option.name === 'help' ? `-h, ${long}` : long;
}

/** One command's synopsis: `pgrotate history ACCOUNT [--json] [--limit N]`. */
export function synopsis(command: Command): string {
  const bracketed = command.options.filter((o) => !o.inArgs).map((o) => `[${flag(o)}]`);
  return ['pgrotate', command.name, command.args, ...bracketed].filter((part) => part !== '').join(' ');
}

/** Options as aligned `  FLAG   HELP` lines. */
function optionLines(options: readonly OptionDoc[]): string {
  const width = Math.max(...options.map((o) => flag(o).length)) + 3;
  return options.map((o) => `  ${flag(o).padEnd(width)}${o.help}\n`).join('');
}

/** `pgrotate --help`: every command's synopsis, the global options, the exit codes. */
export function usageText(): string {
  return `pgrotate: PostgreSQL credential rotation

Usage:
${COMMANDS.map((c) => `  ${synopsis(c)}\n`).join('')}
Options:
${optionLines(GLOBAL_OPTIONS)}
${EXIT_CODES}`;
}

/** `pgrotate COMMAND --help`: that command's synopsis, what it does, and its options. */
export function commandHelp(command: Command): string {
  return `Usage: ${synopsis(command)}

${command.summary}

Options:
${optionLines([...command.options, ...GLOBAL_OPTIONS])}
${EXIT_CODES}`;
}
