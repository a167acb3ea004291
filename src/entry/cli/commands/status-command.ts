import type { App } from '../../../core/app.js';
import { accountStatuses, statusJson } from '../../../services/status/account-status.js';
import { table, when, type CliIo } from '../cli-io.js';

/** `pgrotate status [--json]`: every configured account with its recorded state. */
export async function statusCommand(app: App, args: { json: boolean }, io: CliIo): Promise<number> {
  const rows = await accountStatuses(app);
  if (args.json) {
    io.stdout.write(`${JSON.stringify(statusJson(rows), null, 2)}\n`);
  } else {
    io.stdout.write(
      table(
        ['ACCOUNT', 'TARGET', 'STRATEGY', 'ROLE', 'LAST ROTATED', 'OLD EXPIRES', 'NEXT DUE', 'STATUS'],
        rows.map((r) => [
          r.name,
          r.target,
          r.strategy,
          r.activeRole ?? '-',
          when(r.lastRotatedAt),
          when(r.oldCredentialExpiresAt),
          when(r.nextDueAt),
          r.rotationInProgress ? 'in-progress' : r.lastStatus,
        ]),
      ),
    );
    for (const r of rows) for (const w of r.warnings) io.stdout.write(`warning: account ${r.name}: ${w}\n`);
    for (const r of rows) if (r.adoptRefusal) io.stdout.write(`not adopted: ${r.adoptRefusal}\n`);
  }
  return 0;
}
