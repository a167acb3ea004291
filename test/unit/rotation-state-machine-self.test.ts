import { describe, expect, it } from 'vitest';
import { SelfLoginRefusedError } from '../../src/core/errors.js';
import { makeHarness, type Harness } from './fakes/engine-harness.js';
import { credential, everythingRecorded, livePassword } from './fakes/scenario.js';

// `admin: self` (issue 29.1) over the same fakes as the other state-machine tests: the role logs
// in with the password PostgreSQL holds for it and sets its own verifier; no admin connection is
// ever asked for. The fake refuses any ALTER ROLE on a self login other than CURRENT_USER PASSWORD.

const SELF_ALTER = `ALTER ROLE CURRENT_USER PASSWORD '<verifier>'`;

function selfAccount(extra: Record<string, unknown> = {}): Harness {
  const h = makeHarness({ account: { name: 'billing', role: 'billing_app', admin: 'self', ...extra } });
  h.targets.addRole('billing_app');
  return h;
}

describe('rotation state machine: admin: self', () => {
  it('rotates over logins as the role itself: pre-flight and apply with the current password, record with the new', async () => {
    const h = selfAccount();
    const old = credential('billing_app');
    h.provider.seed('pg/app', { current: old });
    await livePassword(h, 'billing_app', old.password);

    const res = await h.rotate({ reason: 'scheduled' });

    expect(res).toMatchObject({ outcome: 'succeeded', error: null, role: 'billing_app' });
    expect(h.targets.adminSessions).toBe(0);
    // Pre-flight's catalogue read, the ALTER and record each ran in a session as the role.
    expect(h.targets.sql.every((s) => s.as === 'billing_app')).toBe(true);
    expect(h.targets.statements().filter((t) => t.startsWith('ALTER'))).toEqual([SELF_ALTER]);
    // Logins: pre-flight (old), apply (old), verify (new), record (new).
    expect(h.targets.logins).toEqual([
      { user: 'billing_app', ok: true },
      { user: 'billing_app', ok: true },
      { user: 'billing_app', ok: true },
      { user: 'billing_app', ok: true },
    ]);
    const { current } = h.provider.peek('pg/app');
    expect(current?.rotationId).toBe(res.rotationId);
    expect(await h.targets.accepts('billing_app', current?.password as string)).toBe(true);
    expect(await h.targets.accepts('billing_app', old.password)).toBe(false);
    // I4: neither password is in any SQL, log line, audit event or record.
    const recorded = everythingRecorded(h);
    expect(recorded).not.toContain(old.password);
    expect(recorded).not.toContain(current?.password);
  });

  it('refuses before anything changes when the stored credential does not log in, saying an admin is needed once', async () => {
    const h = selfAccount();
    const stored = credential('billing_app');
    h.provider.seed('pg/app', { current: stored });
    await livePassword(h, 'billing_app', 'someone-changed-it-by-hand');
    const verifierBefore = h.targets.roles.get('billing_app')?.verifier;

    const res = await h.rotate();

    expect(res.outcome).toBe('failed');
    expect(res.error).toBeInstanceOf(SelfLoginRefusedError);
    expect(res.error?.message).toMatch(/^account billing: admin: self logs in as role "billing_app"/);
    expect(res.error?.message).toContain('Nothing was changed');
    expect(res.error?.message).toContain('An admin is needed once to recover account billing');
    expect(res.rotationId).toBeNull();
    expect(h.provider.calls.map((c) => c.op)).toEqual(['getCurrent']);
    expect(h.provider.peek('pg/app').pending ?? null).toBeNull();
    expect(h.targets.roles.get('billing_app')?.verifier).toBe(verifierBefore);
    expect(h.targets.sql).toEqual([]);
    expect(everythingRecorded(h)).not.toContain(stored.password);
  });

  it('refuses an account whose provider holds no credential (nothing to log in with)', async () => {
    const h = selfAccount();
    await livePassword(h, 'billing_app', 'only-postgres-knows');

    const res = await h.rotate();

    expect(res.error).toBeInstanceOf(SelfLoginRefusedError);
    expect(res.error?.message).toContain('the provider holds no credential for it');
    expect(h.provider.calls.map((c) => c.op)).toEqual(['getCurrent']);
    expect(h.targets.logins).toEqual([]);
  });

  it('resumes a rotation that crashed after its ALTER: the pending credential logs in and the rotation finishes', async () => {
    const h = selfAccount();
    const record = h.state.seedRunning({
      account: 'billing',
      strategy: 'single-user',
      step: 'staged',
      targetRole: 'billing_app',
      previousRole: 'billing_app',
      requestedBy: 'scheduler',
    });
    const old = credential('billing_app');
    const next = credential('billing_app', record.id);
    h.provider.seed('pg/app', { current: old, pending: next });
    // The crashed attempt's ALTER took: PostgreSQL holds the pending password now.
    await livePassword(h, 'billing_app', next.password);

    const res = await h.rotate();

    expect(res).toMatchObject({ outcome: 'succeeded', resumed: true, rotationId: record.id });
    expect(h.targets.adminSessions).toBe(0);
    // The resumed apply tries the pending credential first: no failed login with the old one.
    expect(h.targets.logins[0]).toEqual({ user: 'billing_app', ok: true });
    expect(h.targets.logins.every((l) => l.ok)).toBe(true);
    expect(h.provider.peek('pg/app').current?.rotationId).toBe(record.id);
    expect(await h.targets.accepts('billing_app', next.password)).toBe(true);
  });

  it('resumes a rotation that crashed before its ALTER: the current credential still logs in', async () => {
    const h = selfAccount();
    const record = h.state.seedRunning({
      account: 'billing',
      strategy: 'single-user',
      step: 'staged',
      targetRole: 'billing_app',
      previousRole: 'billing_app',
      requestedBy: 'scheduler',
    });
    const old = credential('billing_app');
    const next = credential('billing_app', record.id);
    h.provider.seed('pg/app', { current: old, pending: next });
    await livePassword(h, 'billing_app', old.password);

    const res = await h.rotate();

    expect(res).toMatchObject({ outcome: 'succeeded', resumed: true });
    // Pending refused (not applied yet), then the current one logs in and applies.
    expect(h.targets.logins.slice(0, 2)).toEqual([
      { user: 'billing_app', ok: false },
      { user: 'billing_app', ok: true },
    ]);
    expect(await h.targets.accepts('billing_app', next.password)).toBe(true);
  });

  it('rolls back over a login with the new credential when verify is refused, restoring the previous verifier', async () => {
    const h = selfAccount();
    const old = credential('billing_app');
    h.provider.seed('pg/app', { current: old });
    await livePassword(h, 'billing_app', old.password);
    // The two verify logins with the new password are refused; the rollback's login with it works.
    let refusals = 2;
    h.targets.loginOverride = (_user, password) =>
      password !== old.password && refusals-- > 0
        ? { ok: false, authFailure: true, refusal: 'password', message: 'password authentication failed' }
        : undefined;

    const res = await h.rotate();

    expect(res.outcome).toBe('failed');
    expect(res.error?.message).toContain('the previous credential was restored');
    expect(h.targets.adminSessions).toBe(0);
    expect(h.targets.statements().filter((t) => t.startsWith('ALTER'))).toEqual([SELF_ALTER, SELF_ALTER]);
    expect(await h.targets.accepts('billing_app', old.password)).toBe(true);
    const slot = h.provider.peek('pg/app');
    expect(slot.current?.password).toBe(old.password);
    expect(slot.pending ?? null).toBeNull();
  });

  it('keeps the pending credential and says an admin is needed when neither credential logs in for the rollback', async () => {
    const h = selfAccount();
    const old = credential('billing_app');
    h.provider.seed('pg/app', { current: old });
    await livePassword(h, 'billing_app', old.password);
    // Every login with the new password is refused (verify and the rollback's), and the ALTER
    // took, so the old one is refused too: only an admin can tell PostgreSQL a known password now.
    h.targets.loginOverride = (_user, password) =>
      password !== old.password
        ? { ok: false, authFailure: true, refusal: 'password', message: 'password authentication failed' }
        : undefined;

    const res = await h.rotate();

    expect(res.outcome).toBe('failed');
    expect(res.error?.message).toContain(
      'admin: self could log in as role "billing_app" with neither the new nor the previous credential',
    );
    expect(res.error?.message).toContain('An admin is needed once to recover account billing');
    expect(res.error?.message).toContain('the rotation stays resumable');
    // I1: the password PostgreSQL holds is still readable, as pending.
    const { pending } = h.provider.peek('pg/app');
    expect(pending?.rotationId).toBe(res.rotationId);
    h.targets.loginOverride = null;
    expect(await h.targets.accepts('billing_app', pending?.password as string)).toBe(true);
    expect(h.state.rotations.find((r) => r.id === res.rotationId)?.status).toBe('running');
  });

  it('ends the role’s other sessions over its own login with --terminate-sessions (no pg_signal_backend needed)', async () => {
    const h = selfAccount();
    const old = credential('billing_app');
    h.provider.seed('pg/app', { current: old });
    await livePassword(h, 'billing_app', old.password);
    (h.targets.roles.get('billing_app') as { sessions: number }).sessions = 3;

    const res = await h.rotate({ terminateSessions: true });

    expect(res).toMatchObject({ outcome: 'succeeded', sessionsEnded: 3 });
    expect(h.targets.adminSessions).toBe(0);
    const terminate = h.targets.sql.find((s) => /pg_terminate_backend/.test(s.text));
    expect(terminate?.as).toBe('billing_app');
  });
});
