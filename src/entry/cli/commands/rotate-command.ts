import { userInfo } from 'node:os';
import type { App } from '../../../core/app.js';
import type { AccountConfig } from '../../../core/config/config-schema.js';
import { RotationDispatch } from '../../../services/dispatch/rotation-dispatch.js';
import { ExitCode, UsageError } from '../../../core/errors.js';
import type { RunResult } from '../../../core/rotation/run-result.js';
import { table, type CliIo } from '../cli-io.js';
import { runResultsTable } from '../run-result-output.js';

export { runBounded } from '../../../core/concurrency/run-bounded.js';

export interface RotateArgs {
  accounts: string[];
  all: boolean;
  reason?: string | undefined;
  dryRun: boolean;
  terminateSessions: boolean;
  json: boolean;
  concurrency: number;
  /** With a queue configured: wait for the workers' outcomes instead of returning job ids. */
  wait?: boolean;
}

/** Who is asking, for the audit trail. */
export function requester(env: NodeJS.ProcessEnv): string {
  try {
    return env.PGROTATE_ACTOR ?? `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

/** `pgrotate rotate ACCOUNT... | --all`. */
export async function rotateCommand(app: App, args: RotateArgs, io: CliIo): Promise<number> {
  if (args.all === args.accounts.length > 0) {
    throw new UsageError('rotate: name one or more accounts, or --all (not both)');
  }
  const accounts: AccountConfig[] = args.all ? app.config.accounts : args.accounts.map((n) => app.account(n));
  const rotations = new RotationDispatch(app);
  try {
    // With workers configured the request goes to them (a dry run changes nothing, so it stays here).
    const dispatched = await rotations.request(
      accounts.map((a) => a.name),
      {
        kind: 'on-demand',
        reason: args.reason ?? null,
        requestedBy: requester(io.env),
        terminateSessions: args.terminateSessions,
      },
      {
        wait: args.wait ? { timeoutMs: 15 * 60_000 } : null,
        direct: { concurrency: args.concurrency, dryRun: args.dryRun },
        progress: (done, total) => {
          if (io.stderr.isTTY && total > 1) io.stderr.write(`\rrotating: ${done}/${total}`);
        },
      },
    );
    const queued = dispatched.jobIds !== null;
    if (!dispatched.results) {
      const jobIds = dispatched.jobIds ?? [];
      if (args.json) io.stdout.write(`${JSON.stringify({ queued: jobIds }, null, 2)}\n`);
      else
        io.stdout.write(
          `queued ${jobIds.length} rotation(s); add --wait to wait for the outcome\n${jobIds.join('\n')}\n`,
        );
      return ExitCode.ok;
    }
    const results = await dispatched.results;
    if (io.stderr.isTTY && accounts.length > 1) io.stderr.write('\n');
    if (args.json) io.stdout.write(`${JSON.stringify({ results }, null, 2)}\n`);
    else io.stdout.write(queued ? runResultsTable(results) : directResultsTable(results));
    return exitCodeOf(results);
  } finally {
    await rotations.close();
  }
}

/** The table of rotations run here (no sessions column: `rotate` shows what the engine did). */
function directResultsTable(results: RunResult[]): string {
  const at = (iso: string | null) => iso?.replace(/\.\d{3}Z$/, 'Z') ?? '-';
  return table(
    ['ACCOUNT', 'OUTCOME', 'ROLE', 'OLD CREDENTIAL EXPIRES', 'NEXT DUE', 'DETAIL'],
    results.map((r) => [
      r.account,
      r.outcome,
      r.role ?? '-',
      at(r.oldCredentialExpiresAt),
      at(r.nextDueAt),
      r.error?.message.split('\n')[0] ?? (r.resumed ? 'resumed' : ''),
    ]),
  );
}

/** 0 when every rotation (or dry run) succeeded; 3 when the only problem was a busy account. */
export function exitCodeOf(results: Array<{ outcome: string }>): number {
  if (results.some((r) => r.outcome === 'failed')) return ExitCode.failed;
  if (results.some((r) => r.outcome === 'busy')) return ExitCode.busy;
  return ExitCode.ok;
}
