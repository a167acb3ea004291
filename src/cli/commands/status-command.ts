import type { App } from '../../app/app-context.js';
import { table, when, type CliIo } from '../cli-io.js';

/** Every configured account with its recorded state (the rows of `status`, also served by the HTTP API). */
export async function accountStatuses(app: App) {
  const states = new Map((await app.state.listAccounts()).map((s) => [s.name, s]));
  const running = new Set(
    (await app.state.pool.query<{ account: string }>(`SELECT account FROM ${app.state.s}.rotations WHERE status = 'running'`)).rows.map((r) => r.account),
  );
  return app.config.accounts.map((a) => {
    const s = states.get(a.name);
    return {
      name: a.name,
      target: a.target,
      strategy: a.strategy,
      provider: a.provider,
      secret: a.secret,
      activeRole: s?.activeRole ?? null,
      lastRotatedAt: s?.lastRotatedAt ?? null,
      oldCredentialExpiresAt: s?.oldCredentialExpiresAt ?? null,
      nextDueAt: s?.nextDueAt ?? null,
      lastStatus: s?.lastStatus ?? 'never-rotated',
      // Scrubbed again on the way out: a row written by another process (or an older version)
      // may hold a value that this process knows to be secret.
      lastError: s?.lastError ? app.redactor.scrub(s.lastError) : null,
      consecutiveFailures: s?.consecutiveFailures ?? 0,
      warnings: s?.warnings ?? [],
      rotationInProgress: running.has(a.name),
    };
  });
}

/** The documented `status --json` document. */
export function statusJson(rows: Awaited<ReturnType<typeof accountStatuses>>): { accounts: Array<Record<string, unknown>> } {
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return { accounts: rows.map((r) => ({ ...r, lastRotatedAt: iso(r.lastRotatedAt), oldCredentialExpiresAt: iso(r.oldCredentialExpiresAt), nextDueAt: iso(r.nextDueAt) })) };
}

/** `pgrotate status [--json]`: every configured account with its recorded state. */
export async function statusCommand(app: App, args: { json: boolean }, io: CliIo): Promise<number> {
  const rows = await accountStatuses(app);
  if (args.json) {
    io.stdout.write(`${JSON.stringify(statusJson(rows), null, 2)}\n`);
  } else {
    io.stdout.write(
      table(
        ['ACCOUNT', 'TARGET', 'STRATEGY', 'ROLE', 'LAST ROTATED', 'OLD EXPIRES', 'NEXT DUE', 'STATUS'],
        rows.map((r) => [r.name, r.target, r.strategy, r.activeRole ?? '-', when(r.lastRotatedAt), when(r.oldCredentialExpiresAt), when(r.nextDueAt), r.rotationInProgress ? 'in-progress' : r.lastStatus]),
      ),
    );
    for (const r of rows) for (const w of r.warnings) io.stdout.write(`warning: account ${r.name}: ${w}\n`);
  }
  return 0;
}
