import { describe, expect, it } from 'vitest';
import { ProviderError, VerifyFailedError } from '../../src/core/errors.js';
import type { LoginResult } from '../../src/core/pg/target-connector.js';
import { makeHarness, type Harness } from './fakes/engine-harness.js';
import { credential, everythingRecorded, livePassword } from './fakes/scenario.js';

// Rollback (verify did not prove the new password) and stale pending values (a pending value of
// another rotation found at stage), over the in-memory fakes.

const REFUSED: LoginResult = {
  ok: false,
  authFailure: true,
  refusal: 'password',
  message: 'password authentication failed for user "billing_app"',
};
const FAULT: LoginResult = { ok: false, authFailure: false, refusal: 'fault', message: 'timeout expired' };

/** Single-user account whose provider holds `old` as current, live in the catalogue. */
async function singleUserWithPrevious(): Promise<{ h: Harness; old: ReturnType<typeof credential> }> {
  const h = makeHarness({ account: { name: 'billing', role: 'billing_app' } });
  const old = credential('billing_app');
  h.provider.seed('pg/app', { current: old });
  await livePassword(h, 'billing_app', old.password);
  return { h, old };
}

/** Alternating account whose provider holds reports_a's credential as current, live in the catalogue. */
async function alternatingWithCurrent(): Promise<Harness> {
  const h = makeHarness({
    account: { name: 'reports', strategy: 'alternating', roles: ['reports_a', 'reports_b'], gracePeriod: '1h' },
  });
  h.targets.addRole('reports_a');
  h.targets.addRole('reports_b');
  const old = credential('reports_a');
  h.provider.seed('pg/app', { current: old });
  await livePassword(h, 'reports_a', old.password);
  return h;
}

/** Make the server answer `answer` to every login except one with `allowed`; returns the passwords it was given. */
function answerExcept(h: Harness, answer: LoginResult, allowed?: string): string[] {
  const tried: string[] = [];
  h.targets.loginOverride = (_user, password) => {
    tried.push(password);
    return password === allowed ? undefined : answer;
  };
  return tried;
}

describe('rotation state machine: rollback when verify does not prove the new password', () => {
  it('single-user, refused, previous credential known: previous restored in PostgreSQL, pending discarded, rotation failed', async () => {
    const { h, old } = await singleUserWithPrevious();
    const tried = answerExcept(h, REFUSED, old.password);

    const res = await h.rotate();

    expect(res.outcome).toBe('failed');
    expect(res.error).toBeInstanceOf(VerifyFailedError);
    expect(res.error?.message).toMatch(
      /account billing: the new credential of role "billing_app" did not log in to target main: .*; the previous credential was restored$/,
    );
    expect(res.error).toMatchObject({ account: 'billing', target: 'main' });
    const id = res.rotationId as string;
    // Two verify attempts (verifyAttempts: 2), then the restore.
    expect(h.targets.logins).toEqual([
      { user: 'billing_app', ok: false },
      { user: 'billing_app', ok: false },
    ]);
    expect(h.targets.statements().slice(1)).toEqual([
      `ALTER ROLE "billing_app" PASSWORD '<verifier>'`,
      `ALTER ROLE "billing_app" PASSWORD '<verifier>'`,
    ]);
    expect(h.provider.ops()).toEqual(['getCurrent', 'stagePending', 'getCurrent', 'discardPending']);
    expect(h.provider.calls.at(-1)).toEqual({ op: 'discardPending', secret: 'pg/app', rotationId: id });
    expect(h.state.calls).toEqual(['acquire', 'create', 'advance:staged', 'fail', 'release']);
    expect(h.state.auditKinds().at(-1)).toBe('rotation.failed');
    expect(h.state.rotation(id)).toMatchObject({
      status: 'failed',
      step: 'applied',
      error: expect.stringMatching(/previous credential was restored/),
    });
    expect(h.state.account('billing')).toMatchObject({ lastStatus: 'failed', consecutiveFailures: 1 });
    // I1: what applications read logs in again; nothing else is kept.
    expect(h.provider.peek('pg/app')).toEqual({ current: old, pending: null, previous: null });
    h.targets.loginOverride = null;
    expect(await h.targets.accepts('billing_app', old.password)).toBe(true);
    // I4: neither the refused new password nor the restored one is in any record or message.
    const refusedPassword = tried[0] as string;
    expect(refusedPassword).toMatch(/^[A-Za-z0-9]{32}$/);
    for (const pw of [old.password, refusedPassword])
      expect(everythingRecorded(h) + res.error?.message).not.toContain(pw);
  });

  it('single-user, a fault (not a refusal) with the previous credential known: restored all the same', async () => {
    const { h, old } = await singleUserWithPrevious();
    answerExcept(h, FAULT, old.password);
    const res = await h.rotate();
    expect(res.error?.message).toMatch(/timeout expired; the previous credential was restored$/);
    expect(h.state.calls).toEqual(['acquire', 'create', 'advance:staged', 'fail', 'release']);
    expect(h.provider.peek('pg/app').pending).toBeNull();
    h.targets.loginOverride = null;
    expect(await h.targets.accepts('billing_app', old.password)).toBe(true);
  });

  it('single-user, refused, no previous credential (first rotation): pending kept, rotation failed, nothing restored', async () => {
    const h = makeHarness({ account: { name: 'billing', role: 'billing_app' } });
    h.targets.addRole('billing_app');
    answerExcept(h, REFUSED);
    const res = await h.rotate();
    expect(res.error).toBeInstanceOf(VerifyFailedError);
    expect(res.error?.message).toMatch(
      /did not log in to target main: .*; the pending credential is kept in the provider$/,
    );
    expect(h.targets.statements().slice(1)).toEqual([`ALTER ROLE "billing_app" PASSWORD '<verifier>'`]);
    expect(h.provider.ops()).toEqual(['getCurrent', 'stagePending', 'getCurrent']);
    expect(h.state.calls).toEqual(['acquire', 'create', 'advance:staged', 'fail', 'release']);
    // I1: the password PostgreSQL now has is still readable from the provider.
    const pending = h.provider.peek('pg/app').pending;
    expect(pending?.rotationId).toBe(res.rotationId);
    h.targets.loginOverride = null;
    expect(await h.targets.accepts('billing_app', pending?.password as string)).toBe(true);
  });

  it('single-user, a fault with no previous credential: the rotation stays resumable, and the next attempt finishes it with the same value', async () => {
    const h = makeHarness({ account: { name: 'billing', role: 'billing_app' } });
    h.targets.addRole('billing_app');
    answerExcept(h, FAULT);
    const first = await h.rotate();
    expect(first.error?.message).toMatch(/timeout expired; the rotation stays resumable$/);
    // Not failed: the engine only notes the error on the running record.
    expect(h.state.calls).toEqual(['acquire', 'create', 'advance:staged', 'noteError', 'release']);
    // Still at staged: apply and verify are redone by the resume (both idempotent).
    expect(h.state.rotation(first.rotationId)).toMatchObject({
      status: 'running',
      step: 'staged',
      error: expect.stringMatching(/resumable/),
    });
    expect(h.state.auditKinds().at(-1)).toBe('rotation.interrupted');
    const staged = h.provider.peek('pg/app').pending;

    h.targets.loginOverride = null;
    h.clearCalls();
    const second = await h.rotate();
    expect(second).toMatchObject({ outcome: 'succeeded', resumed: true, rotationId: first.rotationId });
    expect(h.state.calls).toEqual(['acquire', 'resume', 'succeed', 'release']);
    expect(h.provider.peek('pg/app').current?.password).toBe(staged?.password);
  });

  it('single-user, the previous credential cannot be restored (admin connection lost): pending kept, resumable', async () => {
    const { h, old } = await singleUserWithPrevious();
    answerExcept(h, REFUSED, old.password);
    // The admin connection is lost once verify has begun: the restore cannot reach the target.
    h.targets.failAdminWhen = () => h.targets.logins.length > 0;
    const res = await h.rotate();
    expect(res.error).toBeInstanceOf(VerifyFailedError);
    expect(res.error?.message).toMatch(
      /the previous credential could not be restored \(.*connection refused\); the rotation stays resumable$/,
    );
    expect(h.provider.ops()).not.toContain('discardPending');
    expect(h.provider.peek('pg/app').pending?.rotationId).toBe(res.rotationId);
    expect(h.state.calls).toEqual(['acquire', 'create', 'advance:staged', 'noteError', 'release']);
    expect(h.state.rotation(res.rotationId)).toMatchObject({ status: 'running', step: 'staged' });
  });

  it('alternating, refused, the other role is current: the new password is removed from the inactive role, pending discarded, rotation failed', async () => {
    const h = await alternatingWithCurrent();
    const old = h.provider.peek('pg/app').current as ReturnType<typeof credential>;
    const tried = answerExcept(h, REFUSED, old.password);
    const res = await h.rotate();
    expect(res.error).toBeInstanceOf(VerifyFailedError);
    expect(res.error?.message).toMatch(
      /role "reports_b" did not log in .*; the new password was removed from inactive role "reports_b" \(applications keep using role "reports_a"\)$/,
    );
    expect(h.state.calls).toEqual(['acquire', 'create', 'advance:staged', 'fail', 'release']);
    expect(h.targets.statements().slice(1)).toEqual([
      `ALTER ROLE "reports_b" PASSWORD '<verifier>' VALID UNTIL 'infinity'`,
      `ALTER ROLE "reports_b" PASSWORD NULL`,
    ]);
    expect(h.provider.ops()).toEqual(['getCurrent', 'stagePending', 'getCurrent', 'discardPending']);
    // A password nobody holds does not stay live; applications' role is untouched.
    expect(h.targets.roles.get('reports_b')?.verifier).toBeNull();
    expect(h.provider.peek('pg/app')).toEqual({ current: old, pending: null, previous: null });
    h.targets.loginOverride = null;
    expect(await h.targets.accepts('reports_a', old.password)).toBe(true);
    expect(everythingRecorded(h) + res.error?.message).not.toContain(tried[0]);
  });

  it('alternating, refused, removing the new password fails (admin connection lost): pending kept, resumable', async () => {
    const h = await alternatingWithCurrent();
    answerExcept(h, REFUSED, h.provider.peek('pg/app').current?.password);
    h.targets.failAdminWhen = () => h.targets.logins.length > 0;
    const res = await h.rotate();
    expect(res.error?.message).toMatch(
      /the new password could not be removed from inactive role "reports_b" \(.*connection refused\); the rotation stays resumable$/,
    );
    expect(h.state.calls).toEqual(['acquire', 'create', 'advance:staged', 'noteError', 'release']);
    expect(h.provider.peek('pg/app').pending?.rotationId).toBe(res.rotationId);
  });

  it('alternating, refused while adopting the pair (no current value): pending kept, rotation failed', async () => {
    const h = makeHarness({ account: { name: 'reports', strategy: 'alternating', roles: ['reports_a', 'reports_b'] } });
    h.targets.addRole('reports_a');
    h.targets.addRole('reports_b');
    answerExcept(h, REFUSED);
    const res = await h.rotate();
    expect(res.error?.message).toMatch(
      /role "reports_a" did not log in .*; the pending credential is kept in the provider$/,
    );
    expect(h.state.calls).toEqual(['acquire', 'create', 'advance:staged', 'fail', 'release']);
    expect(h.targets.statements().slice(1)).toEqual([
      `ALTER ROLE "reports_a" PASSWORD '<verifier>' VALID UNTIL 'infinity'`,
    ]);
    expect(h.provider.peek('pg/app').pending?.rotationId).toBe(res.rotationId);
  });

  it('alternating, a fault: resumable, pending kept', async () => {
    const h = makeHarness({ account: { name: 'reports', strategy: 'alternating', roles: ['reports_a', 'reports_b'] } });
    h.targets.addRole('reports_a');
    h.targets.addRole('reports_b');
    answerExcept(h, FAULT);
    const res = await h.rotate();
    expect(res.error?.message).toMatch(/the rotation stays resumable$/);
    expect(h.state.calls).toEqual(['acquire', 'create', 'advance:staged', 'noteError', 'release']);
    expect(h.provider.peek('pg/app').pending?.rotationId).toBe(res.rotationId);
  });
});

describe('rotation state machine: a stale pending value of another rotation', () => {
  it('one that does not log in is discarded, with an audit event, before the new value is staged', async () => {
    const { h } = await singleUserWithPrevious();
    const stale = credential('billing_app', 'stale-rotation-1');
    h.provider.seed('pg/app', { pending: stale });
    const res = await h.rotate();
    expect(res.outcome).toBe('succeeded');
    // Staging meets the stale value (a conflict carrying it), deals with it, stages again.
    expect(h.provider.calls.slice(0, 4)).toEqual([
      { op: 'getCurrent', secret: 'pg/app' },
      { op: 'stagePending', secret: 'pg/app', rotationId: res.rotationId },
      { op: 'discardPending', secret: 'pg/app', rotationId: 'stale-rotation-1' },
      { op: 'stagePending', secret: 'pg/app', rotationId: res.rotationId },
    ]);
    // The stale value was tried once (refused), then the new one verified.
    expect(h.targets.logins).toEqual([
      { user: 'billing_app', ok: false },
      { user: 'billing_app', ok: true },
    ]);
    expect(h.state.auditKinds().slice(0, 3)).toEqual([
      'rotation.started',
      'rotation.stale-pending-discarded',
      'rotation.staged',
    ]);
    expect(h.state.audits[1]).toMatchObject({
      account: 'billing',
      rotationId: res.rotationId,
      detail: { staleRotationId: 'stale-rotation-1' },
    });
    expect(everythingRecorded(h)).not.toContain(stale.password);
  });

  it("single-user, one that still logs in is the role's only working password: promoted (with a warning) before the new value is staged", async () => {
    const { h, old } = await singleUserWithPrevious();
    const stale = credential('billing_app', 'stale-rotation-2');
    h.provider.seed('pg/app', { pending: stale });
    await livePassword(h, 'billing_app', stale.password);
    const res = await h.rotate();
    expect(res.outcome).toBe('succeeded');
    expect(h.provider.calls.slice(0, 5)).toEqual([
      { op: 'getCurrent', secret: 'pg/app' },
      { op: 'stagePending', secret: 'pg/app', rotationId: res.rotationId },
      { op: 'getCurrent', secret: 'pg/app' },
      { op: 'promotePending', secret: 'pg/app', rotationId: 'stale-rotation-2' },
      { op: 'stagePending', secret: 'pg/app', rotationId: res.rotationId },
    ]);
    expect(h.provider.ops()).not.toContain('discardPending');
    expect(h.state.auditKinds().slice(0, 3)).toEqual([
      'rotation.started',
      'rotation.stale-pending-promoted',
      'rotation.staged',
    ]);
    expect(h.state.audits[1]?.detail).toEqual({ staleRotationId: 'stale-rotation-2', role: 'billing_app' });
    expect(res.warnings).toEqual([
      expect.stringMatching(
        /pending credential of failed rotation stale-rotation-2 was the only password role "billing_app" logged in with; it was promoted/,
      ),
    ]);
    // The promoted value became previous when this rotation promoted its own.
    expect(h.provider.peek('pg/app').previous).toEqual(stale);
    expect(await h.targets.accepts('billing_app', old.password)).toBe(false);
    expect(everythingRecorded(h) + JSON.stringify(res.warnings)).not.toContain(stale.password);
  });

  it('one that logs in and is already current (a promote that left its pending copy) is discarded', async () => {
    const h = makeHarness({ account: { name: 'billing', role: 'billing_app' } });
    const cur = credential('billing_app', 'rotation-0');
    h.provider.seed('pg/app', { current: cur, pending: { ...cur } });
    await livePassword(h, 'billing_app', cur.password);
    const res = await h.rotate();
    expect(res.outcome).toBe('succeeded');
    expect(
      h.provider.calls
        .slice(1, 5)
        .map((c) => `${c.op}${c.rotationId ? `:${c.rotationId === res.rotationId ? 'new' : c.rotationId}` : ''}`),
    ).toEqual(['stagePending:new', 'getCurrent', 'discardPending:rotation-0', 'stagePending:new']);
    expect(h.state.auditKinds()).toContain('rotation.stale-pending-discarded');
    expect(res.warnings).toEqual([]);
  });

  it("alternating, one that logs in as the role applications do not read: that role's password is removed, then the value discarded", async () => {
    const h = await alternatingWithCurrent();
    const stale = credential('reports_b', 'stale-rotation-4');
    h.provider.seed('pg/app', { pending: stale });
    await livePassword(h, 'reports_b', stale.password);
    const res = await h.rotate();
    expect(res).toMatchObject({ outcome: 'succeeded', role: 'reports_b' });
    // Pre-flight read, the clear, then this rotation's own apply and the previous role's expiry.
    expect(h.targets.statements().slice(1)).toEqual([
      `ALTER ROLE "reports_b" PASSWORD NULL`,
      `ALTER ROLE "reports_b" PASSWORD '<verifier>' VALID UNTIL 'infinity'`,
      `ALTER ROLE "reports_a" VALID UNTIL '<time>'`,
    ]);
    expect(h.provider.calls.find((c) => c.op === 'discardPending')).toEqual({
      op: 'discardPending',
      secret: 'pg/app',
      rotationId: 'stale-rotation-4',
    });
    expect(h.state.auditKinds().slice(0, 4)).toEqual([
      'rotation.started',
      'rotation.stale-pending-cleared',
      'rotation.stale-pending-discarded',
      'rotation.staged',
    ]);
    expect(h.state.audits[1]?.detail).toEqual({ staleRotationId: 'stale-rotation-4', role: 'reports_b' });
    expect(res.warnings).toEqual([
      expect.stringMatching(
        /still logged in as role "reports_b", which applications do not read; its password was removed/,
      ),
    ]);
    expect(await h.targets.accepts('reports_b', stale.password)).toBe(false);
  });

  it('one that logs in as a role this account does not manage is refused and kept; the rotation stays at created', async () => {
    const { h } = await singleUserWithPrevious();
    const stale = credential('someone_else', 'stale-rotation-5');
    h.provider.seed('pg/app', { pending: stale });
    await livePassword(h, 'someone_else', stale.password);
    const res = await h.rotate();
    expect(res.error).toBeInstanceOf(ProviderError);
    expect(res.error?.message).toMatch(
      /pending credential of rotation stale-rotation-5 for role "someone_else", which this account does not manage, and it still logs in to target main; refusing to discard it/,
    );
    expect(h.provider.ops()).toEqual(['getCurrent', 'stagePending', 'getCurrent']);
    expect(h.provider.peek('pg/app').pending).toEqual(stale);
    expect(h.targets.statements()).toHaveLength(1);
    expect(h.state.calls).toEqual(['acquire', 'create', 'noteError', 'release']);
    expect(h.state.rotation(res.rotationId)).toMatchObject({ status: 'running', step: 'created' });
    expect(everythingRecorded(h) + res.error?.message).not.toContain(stale.password);
  });

  it('alternating: one that logs in as a role outside the pair is refused and its password left alone', async () => {
    const h = await alternatingWithCurrent();
    h.targets.addRole('someone_else');
    const stale = credential('someone_else', 'stale-rotation-6');
    h.provider.seed('pg/app', { pending: stale });
    await livePassword(h, 'someone_else', stale.password);
    const verifier = h.targets.roles.get('someone_else')?.verifier;
    const res = await h.rotate();
    expect(res.error).toBeInstanceOf(ProviderError);
    expect(res.error?.message).toMatch(
      /for role "someone_else", which this account does not manage, and it still logs in/,
    );
    expect(h.targets.roles.get('someone_else')?.verifier).toBe(verifier);
    expect(h.provider.peek('pg/app').pending).toEqual(stale);
  });

  it('one whose login is a fault (cannot tell) is kept, and nothing else changes', async () => {
    const { h, old } = await singleUserWithPrevious();
    const stale = credential('billing_app', 'stale-rotation-3');
    h.provider.seed('pg/app', { pending: stale });
    answerExcept(h, FAULT, old.password);
    const res = await h.rotate();
    expect(res.error).toBeInstanceOf(VerifyFailedError);
    expect(res.error?.message).toMatch(
      /cannot tell whether the stale pending credential logs in to target main: timeout expired/,
    );
    expect(h.provider.ops()).toEqual(['getCurrent', 'stagePending']);
    expect(h.provider.peek('pg/app').pending).toEqual(stale);
    expect(h.state.calls).toEqual(['acquire', 'create', 'noteError', 'release']);
  });
});
