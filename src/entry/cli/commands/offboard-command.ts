import type { App } from '../../../core/app.js';
import { RotationDispatch } from '../../../services/dispatch/rotation-dispatch.js';
import { ExitCode } from '../../../core/errors.js';
import { startOffboard, type OffboardSummary } from '../../../services/offboard/offboard-principal.js';
import type { CliIo } from '../cli-io.js';
import { runResultsTable } from '../run-result-output.js';
import { requester } from './rotate-command.js';

export interface OffboardArgs {
  principal: string;
  terminateSessions: boolean;
  json: boolean;
  /** How long to wait for queued rotations. */
  timeoutMs: number;
  /** Accept a principal no account or group names (scripted offboarding of everyone who leaves). */
  allowNone?: boolean;
}

/**
 * `pgrotate offboard PRINCIPAL [--terminate-sessions]`: rotate now every account the principal
 * could have seen (directly or through a group). A principal nobody names is refused (exit 2)
 * unless --allow-none. With a queue configured the rotations go to
 * the workers ahead of scheduled work and this waits for them; otherwise they run here, and an
 * account another rotation holds is waited for (up to the timeout), not failed.
 */
export async function offboardCommand(app: App, args: OffboardArgs, io: CliIo): Promise<number> {
  const progress = (done: number, total: number) => {
    if (io.stderr.isTTY) io.stderr.write(`\roffboarding: ${done}/${total}`);
  };
  const rotations = new RotationDispatch(app);
  let summary: OffboardSummary;
  try {
    const started = await startOffboard(app, rotations, {
      principal: args.principal,
      terminateSessions: args.terminateSessions,
      actor: requester(io.env),
      timeoutMs: args.timeoutMs,
      progress,
      allowNone: args.allowNone ?? false,
    });
    summary = await started.done;
  } finally {
    await rotations.close();
  }
  const { results, rotated, failed } = summary;
  const sessionsEnded = results.reduce((n, r) => n + (r.sessionsEnded ?? 0), 0);
  if (args.json) {
    io.stdout.write(
      `${JSON.stringify({ principal: args.principal, rotated, failed, sessionsEnded: args.terminateSessions ? sessionsEnded : null, results }, null, 2)}\n`,
    );
  } else {
    if (io.stderr.isTTY && results.length > 0) io.stderr.write('\n');
    if (results.length > 0) io.stdout.write(runResultsTable(results));
    else io.stdout.write(`no account lists ${args.principal} (or a group of theirs) in exposedTo\n`);
    io.stdout.write(
      `offboard ${args.principal}: ${rotated.length} rotated, ${failed.length} failed${failed.length ? ` (${failed.join(', ')})` : ''}` +
        `${args.terminateSessions ? `, ${sessionsEnded} sessions ended` : ''}\n`,
    );
  }
  return offboardExitCode(summary);
}

/**
 * 0 when every affected account was rotated, by this run or by a rotation that satisfied it
 * (`skipped`: it started after the request and did all it asked, e.g. another `offboard` of the
 * same person); 3 when the only problem is accounts another rotation still held at the end of
 * the wait; 1 when a rotation failed.
 */
export function offboardExitCode(summary: OffboardSummary): number {
  if (summary.failed.length === 0) return ExitCode.ok;
  const failed = new Set(summary.failed);
  const busyOnly = summary.results.filter((r) => failed.has(r.account)).every((r) => r.outcome === 'busy');
  return busyOnly ? ExitCode.busy : ExitCode.failed;
}
