import { runInline } from '../../../jobs/inline-runner.js';
import { submitRequest } from '../../../jobs/request-submitter.js';
import type { RunResult } from '../../../jobs/rotation-runner.js';
import { stateNow } from '../../../jobs/state-clock.js';
import type { App } from '../../app/app-context.js';
import { ExitCode } from '../../errors.js';
import { accountsExposedTo, principalNames } from '../../offboard/affected-accounts.js';
import type { CliIo } from '../cli-io.js';
import { runResultsTable } from '../run-result-output.js';
import { requester } from './rotate-command.js';

export interface OffboardArgs {
  principal: string;
  terminateSessions: boolean;
  json: boolean;
  /** How long to wait for queued rotations. */
  timeoutMs: number;
}

/**
 * `pgrotate offboard PRINCIPAL [--terminate-sessions]`: rotate now every account the principal
 * could have seen (directly or through a group). With a queue configured the rotations go to
 * the workers ahead of scheduled work and this waits for them; otherwise they run here. Exits
 * 1 unless every affected account was rotated.
 */
export async function offboardCommand(app: App, args: OffboardArgs, io: CliIo): Promise<number> {
  const actor = requester(io.env);
  const affected = accountsExposedTo(app.config, args.principal).map((a) => a.name);
  await app.state.audit({
    kind: 'offboard.requested',
    actor,
    detail: { principal: args.principal, via: principalNames(app.config, args.principal), accounts: affected, terminateSessions: args.terminateSessions },
  });
  const requestedAt = await stateNow(app.state);
  const reason = `offboarding ${args.principal}`;
  let results: RunResult[];
  if (affected.length === 0) {
    results = [];
  } else if (app.config.queue) {
    const progress = (done: number, total: number) => {
      if (io.stderr.isTTY) io.stderr.write(`\roffboarding: ${done}/${total}`);
    };
    const submitted = await submitRequest(
      app,
      affected,
      { kind: 'offboard', reason, requestedBy: actor, terminateSessions: args.terminateSessions, requestedAt },
      { timeoutMs: args.timeoutMs, progress },
    );
    results = submitted.results ?? [];
  } else {
    results = await runInline(app, affected, { kind: 'offboard', reason, requestedBy: actor, terminateSessions: args.terminateSessions, requestedAt }, io.env);
  }
  // A rotation that started after the request (skipped) did the job too.
  const rotated = results.filter((r) => r.outcome === 'succeeded' || r.outcome === 'skipped').map((r) => r.account);
  const failed = results.filter((r) => r.outcome !== 'succeeded' && r.outcome !== 'skipped').map((r) => r.account);
  const sessionsEnded = results.reduce((n, r) => n + (r.sessionsEnded ?? 0), 0);
  await app.state.audit({ kind: 'offboard.completed', actor, detail: { principal: args.principal, rotated, failed, sessionsEnded: args.terminateSessions ? sessionsEnded : null } });
  if (args.json) {
    io.stdout.write(`${JSON.stringify({ principal: args.principal, rotated, failed, sessionsEnded: args.terminateSessions ? sessionsEnded : null, results }, null, 2)}\n`);
  } else {
    if (io.stderr.isTTY && results.length > 0) io.stderr.write('\n');
    if (results.length > 0) io.stdout.write(runResultsTable(results));
    else io.stdout.write(`no account lists ${args.principal} (or a group of theirs) in exposedTo\n`);
    io.stdout.write(
      `offboard ${args.principal}: ${rotated.length} rotated, ${failed.length} failed${failed.length ? ` (${failed.join(', ')})` : ''}` +
        `${args.terminateSessions ? `, ${sessionsEnded} sessions ended` : ''}\n`,
    );
  }
  return failed.length > 0 ? ExitCode.failed : ExitCode.ok;
}
