import type { App } from '../../../core/app.js';
import { ExitCode } from '../../../core/errors.js';
import { rotateDueAccounts } from '../../../services/schedule/run-due.js';
import type { CliIo } from '../cli-io.js';
import { runResultsTable } from '../run-result-output.js';

/**
 * `pgrotate run-due`: the CronJob mode. Syncs the config's accounts, rotates every account due
 * now in this process (no queue needed) under the configured limits, prints a summary, and
 * exits 1 if any rotation failed. A failed account stays due, so the next run retries it.
 */
export async function runDueCommand(app: App, args: { json: boolean }, io: CliIo): Promise<number> {
  const { due, results } = await rotateDueAccounts(app, (done, total) => {
    if (io.stderr.isTTY) io.stderr.write(`\rrotating: ${done}/${total}`);
  });
  if (io.stderr.isTTY && due > 0) io.stderr.write('\n');
  const count = (o: string) => results.filter((r) => r.outcome === o).length;
  const summary = {
    due,
    succeeded: count('succeeded'),
    failed: count('failed'),
    skipped: count('skipped'),
    busy: count('busy'),
  };
  if (args.json) {
    io.stdout.write(`${JSON.stringify({ summary, results }, null, 2)}\n`);
  } else {
    if (results.length > 0) io.stdout.write(runResultsTable(results));
    io.stdout.write(
      `run-due: ${summary.due} due, ${summary.succeeded} succeeded, ${summary.failed} failed, ${summary.skipped} skipped, ${summary.busy} busy elsewhere\n`,
    );
  }
  return summary.failed > 0 ? ExitCode.failed : ExitCode.ok;
}
