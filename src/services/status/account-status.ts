import type { App } from '../../core/app.js';
import { messageOf } from '../../core/errors.js';
import { createPreviousRoleUsage, type PreviousRoleStatus } from '../usage/previous-role-usage.js';

/** Previous roles in grace, sampled live (one statement per target); empty, and logged, when that fails. */
async function previousRoles(app: App): Promise<Map<string, PreviousRoleStatus>> {
  try {
    return await createPreviousRoleUsage(app).live();
  } catch (err) {
    app.log.warn({ error: app.redactor.scrub(messageOf(err)) }, 'could not read the sessions of previous roles');
    return new Map();
  }
}

/** Every configured account with its recorded state (the rows of `status`, also served by the HTTP API). */
export async function accountStatuses(app: App) {
  const states = new Map((await app.state.listAccounts()).map((s) => [s.name, s]));
  const running = await app.state.accountsWithRunningRotation();
  const previous = await previousRoles(app);
  return app.config.accounts.map((a) => {
    const s = states.get(a.name);
    // Only while it matters: once rotated (or adopted), an old refusal is history (audit trail).
    const refusal = s?.adoptRefusal && !s.adoptedAt && !s.lastRotatedAt ? app.redactor.scrub(s.adoptRefusal) : null;
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
      lastStatus: s?.lastStatus ?? (s?.adoptedAt ? 'adopted' : refusal ? 'adopt-refused' : 'never-rotated'),
      // Scrubbed again on the way out: a row written by another process (or an older version)
      // may hold a value that this process knows to be secret.
      lastError: s?.lastError ? app.redactor.scrub(s.lastError) : null,
      consecutiveFailures: s?.consecutiveFailures ?? 0,
      warnings: s?.warnings ?? [],
      rotationInProgress: running.has(a.name),
      /** Alternating accounts in grace: who still uses the previous login (null otherwise). */
      previousRole: previous.get(a.name) ?? null,
      onboard: a.onboard ?? app.config.defaults.onboard,
      adoptedAt: s?.adoptedAt ?? null,
      adoptedFrom: s?.adoptedFrom ?? null,
      adoptRefusal: refusal,
    };
  });
}

/** The documented `status --json` document. */
export function statusJson(rows: Awaited<ReturnType<typeof accountStatuses>>): {
  accounts: Array<Record<string, unknown>>;
} {
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return {
    accounts: rows.map((r) => ({
      ...r,
      lastRotatedAt: iso(r.lastRotatedAt),
      oldCredentialExpiresAt: iso(r.oldCredentialExpiresAt),
      nextDueAt: iso(r.nextDueAt),
      previousRole: r.previousRole && {
        role: r.previousRole.role,
        sessions: r.previousRole.sessions,
        clients: r.previousRole.clients,
        oldestBackendStart: iso(r.previousRole.oldestBackendStart),
        expiresAt: iso(r.previousRole.expiresAt),
        sampledAt: iso(r.previousRole.sampledAt),
        live: r.previousRole.live,
      },
      adoptedAt: iso(r.adoptedAt),
      adoptedFrom: iso(r.adoptedFrom),
    })),
  };
}
