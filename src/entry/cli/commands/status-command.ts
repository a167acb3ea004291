import type { App } from '../../../core/app.js';
import { accountStatuses, statusJson } from '../../../services/status/account-status.js';
import { webhookStatusJson, webhookStatusLines, webhookStatuses } from '../../../services/status/webhook-status.js';
import { table, when, type CliIo } from '../cli-io.js';

/** `pgrotate status [--json]`: every configured account with its recorded state. */
export async function statusCommand(app: App, args: { json: boolean }, io: CliIo): Promise<number> {
  const rows = await accountStatuses(app);
  const webhooks = await webhookStatuses(app);
  if (args.json) {
    const doc = statusJson(rows);
    // Present only with a backlog, so the document of a quiet installation is as before.
    const out = webhooks.length > 0 ? { ...doc, webhooks: webhookStatusJson(webhooks) } : doc;
    io.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
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
    for (const line of webhookStatusLines(webhooks)) io.stdout.write(`${line}\n`);
    // Who still uses the previous login of each alternating account in grace.
    for (const r of rows)
      if (r.previousRole)
        io.stdout.write(
          `previous login: account ${r.name}: ${r.previousRole.summary} (expires ${when(r.previousRole.expiresAt)}${r.previousRole.live ? '' : `, sampled ${when(r.previousRole.sampledAt)}`})\n`,
        );
    for (const r of rows) if (r.adoptRefusal) io.stdout.write(`not adopted: ${r.adoptRefusal}\n`);
  }
  return 0;
}
