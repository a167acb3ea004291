import { syncAccounts } from '../../../jobs/account-sync.js';
import { runInline } from '../../../jobs/inline-runner.js';
import type { App } from '../../app/app-context.js';
import { ExitCode } from '../../errors.js';
import type { CliIo } from '../cli-io.js';
import { runResultsTable } from '../run-result-output.js';

/** Most accounts one run-due handles; the rest are due at the next run. */
const RUN_DUE_LIMIT = 100_000;

/**
 * `pgrotate run-due`: the CronJob mode. Syncs the config's accounts, rotates every account due
 * now in this process (no queue needed) under the configured limits, prints a summary, and
 * exits 1 if any rotation failed. A failed account stays due, so the next run retries it.
 */
export async function runDueCommand(app: App, args: { json: boolean }, io: CliIo): Promise<number> {
  await syncAccounts(app.state, app.config);
  const { due, now } = await app.state.findDueAccounts(RUN_DUE_LIMIT);
  const results = await runInline(
    app,
    due.map((d) => d.name),
    { kind: 'scheduled', reason: 'scheduled', requestedBy: 'run-due', terminateSessions: false, requestedAt: now },
    (done, total) => {
      if (io.stderr.isTTY) io.stderr.write(`\rrotating: ${done}/${total}`);
    },
  );
  if (io.stderr.isTTY && due.length > 0) io.stderr.write('\n');
  const count = (o: string) => results.filter((r) => r.outcome === o).length;
  const summary = { due: due.length, succeeded: count('succeeded'), failed: count('failed'), skipped: count('skipped'), busy: count('busy') };
  if (args.json) {
    io.stdout.write(`${JSON.stringify({ summary, results }, null, 2)}\n`);
  } else {
    if (results.length > 0) io.stdout.write(runResultsTable(results));
    io.stdout.write(`run-due: ${summary.due} due, ${summary.succeeded} succeeded, ${summary.failed} failed, ${summary.skipped} skipped, ${summary.busy} busy elsewhere\n`);
  }
  return summary.failed > 0 ? ExitCode.failed : ExitCode.ok;
}
