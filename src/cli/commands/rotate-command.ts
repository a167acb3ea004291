import { userInfo } from 'node:os';
import type { App } from '../../app/app-context.js';
import type { AccountConfig } from '../../config/config-schema.js';
import { ExitCode, UsageError } from '../../errors.js';
import type { RotationResult } from '../../rotation/rotation-engine.js';
import { rotationResultJson } from '../../rotation/rotation-result-json.js';
import { submitRequest } from '../../../jobs/request-submitter.js';
import { stateNow } from '../../../jobs/state-clock.js';
import { table, when, type CliIo } from '../cli-io.js';
import { runResultsTable } from '../run-result-output.js';

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
  // With workers configured the request goes to them (a dry run changes nothing, so it stays here).
  if (app.config.queue && !args.dryRun) return enqueueRotations(app, accounts, args, io);
  const results = await runBounded(accounts, args.concurrency, (account) =>
    app.engine.rotate(account, {
      reason: args.reason,
      requestedBy: requester(io.env),
      dryRun: args.dryRun,
      terminateSessions: args.terminateSessions,
    }),
    (done, total) => {
      if (io.stderr.isTTY && total > 1) io.stderr.write(`\rrotating: ${done}/${total}`);
    },
  );
  if (io.stderr.isTTY && accounts.length > 1) io.stderr.write('\n');
  if (args.json) {
    io.stdout.write(`${JSON.stringify({ results: results.map(rotationResultJson) }, null, 2)}\n`);
  } else {
    io.stdout.write(
      table(
        ['ACCOUNT', 'OUTCOME', 'ROLE', 'OLD CREDENTIAL EXPIRES', 'NEXT DUE', 'DETAIL'],
        results.map((r) => [r.account, r.outcome, r.role ?? '-', when(r.oldCredentialExpiresAt), when(r.nextDueAt), r.error?.message.split('\n')[0] ?? (r.resumed ? 'resumed' : '')]),
      ),
    );
  }
  return exitCodeOf(results);
}

async function enqueueRotations(app: App, accounts: AccountConfig[], args: RotateArgs, io: CliIo): Promise<number> {
  const submitted = await submitRequest(
    app,
    accounts.map((a) => a.name),
    { kind: 'on-demand', reason: args.reason ?? null, requestedBy: requester(io.env), terminateSessions: args.terminateSessions, requestedAt: await stateNow(app.state) },
    args.wait ? { timeoutMs: 15 * 60_000 } : null,
  );
  if (!submitted.results) {
    if (args.json) io.stdout.write(`${JSON.stringify({ queued: submitted.jobIds }, null, 2)}\n`);
    else io.stdout.write(`queued ${submitted.jobIds.length} rotation(s); add --wait to wait for the outcome\n${submitted.jobIds.join('\n')}\n`);
    return ExitCode.ok;
  }
  const results = submitted.results;
  if (args.json) io.stdout.write(`${JSON.stringify({ results }, null, 2)}\n`);
  else io.stdout.write(runResultsTable(results));
  if (results.some((r) => r.outcome === 'failed')) return ExitCode.failed;
  return results.some((r) => r.outcome === 'busy') ? ExitCode.busy : ExitCode.ok;
}

/** 0 when every rotation (or dry run) succeeded; 3 when the only problem was a busy account. */
export function exitCodeOf(results: RotationResult[]): number {
  if (results.some((r) => r.outcome === 'failed')) return ExitCode.failed;
  if (results.some((r) => r.outcome === 'busy')) return ExitCode.busy;
  return ExitCode.ok;
}


/** Map with at most `limit` calls in flight, reporting progress. */
export async function runBounded<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>, progress?: (done: number, total: number) => void): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
      progress?.(++done, items.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
