import { parseArgs } from 'node:util';
import { UsageError } from '../../core/errors.js';

/**
 * Every option the CLI knows, for every command: one strict parse before the command is known
 * (an option another command takes is accepted and ignored, as it always was). Which command
 * documents which option is said in command-table.ts.
 */
export const CLI_OPTIONS = {
  config: { type: 'string' },
  json: { type: 'boolean', default: false },
  all: { type: 'boolean', default: false },
  reason: { type: 'string' },
  'dry-run': { type: 'boolean', default: false },
  'terminate-sessions': { type: 'boolean', default: false },
  concurrency: { type: 'string', default: '4' },
  limit: { type: 'string', default: '200' },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', default: false },
  wait: { type: 'boolean', default: false },
  'fail-on': { type: 'string', default: 'high' },
  listen: { type: 'string' },
  'allow-none': { type: 'boolean', default: false },
  'since-last': { type: 'boolean', default: false },
} as const;

/** An option's long name (a key of CLI_OPTIONS). */
export type CliOptionName = keyof typeof CLI_OPTIONS;

/** Parse a command line; throws node's own parse error on an unknown option or a missing value. */
export function parseCliArgs(argv: string[]) {
  return parseArgs({ args: argv, options: CLI_OPTIONS, allowPositionals: true, strict: true });
}

/** The parsed option values of one invocation. */
export type CliValues = ReturnType<typeof parseCliArgs>['values'];

/** `text` as a whole number >= 1, else a usage error naming `--flag`. */
export function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${flag} must be a positive whole number`);
  return n;
}
