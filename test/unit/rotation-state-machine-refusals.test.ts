import { describe, expect, it } from 'vitest';
import {
  AdminPrivilegeError,
  FenceLostError,
  LoginPathClosedError,
  PgrotateError,
  ProviderError,
  RoleCannotLoginError,
  RoleExpiredError,
  RoleNotFoundError,
  RotationInProgressError,
  SuperuserRefusedError,
  TargetUnreachableError,
} from '../../src/core/errors.js';
import { makeHarness, type Harness } from './fakes/engine-harness.js';
import { credential, livePassword } from './fakes/scenario.js';

// Dry run, pre-flight refusals (I5: nothing changes, a clear error naming account and target),
// the busy fence, session termination, and faults in the middle of a rotation, over the fakes.

const DAY = 86_400_000;

function singleUser(
  extra: Record<string, unknown> = {},
  harness: Partial<Parameters<typeof makeHarness>[0]> = {},
): Harness {
  const h = makeHarness({ account: { name: 'billing', role: 'billing_app', ...extra }, ...harness });
  h.targets.addRole('billing_app');
  return h;
}

function alternating(): Harness {
  const h = makeHarness({
    account: { name: 'reports', strategy: 'alternating', roles: ['reports_a', 'reports_b'], gracePeriod: '1h' },
  });
  h.targets.addRole('reports_a');
  h.targets.addRole('reports_b');
  return h;
}

describe('rotation state machine: dry run', () => {
  it('checks everything (catalogue, provider, login path) and changes nothing', async () => {
    const h = singleUser();
    const old = credential('billing_app');
    h.provider.seed('pg/app', { current: old });
    const res = await h.rotate({ dryRun: true });
    expect(res).toMatchObject({
      outcome: 'dry-run',
      role: 'billing_app',
      rotationId: null,
      error: null,
      resumed: false,
    });
    expect(h.state.calls).toEqual(['acquire', 'release']);
    expect(h.state.rotations).toEqual([]);
    expect(h.provider.ops()).toEqual(['getCurrent']);
    expect(h.targets.sql).toHaveLength(1);
    expect(h.targets.sql[0]?.text).toMatch(/FROM pg_catalog\.pg_roles me/);
    expect(h.targets.probes).toEqual(['billing_app']);
    expect(h.provider.peek('pg/app')).toEqual({ current: old, pending: null, previous: null });
  });

  it('names the role an alternating rotation would set', async () => {
    const h = alternating();
    h.provider.seed('pg/app', { current: credential('reports_a') });
    const res = await h.rotate({ dryRun: true });
    expect(res).toMatchObject({ outcome: 'dry-run', role: 'reports_b' });
    expect(h.targets.probes).toEqual(['reports_b']);
  });
});

interface Refusal {
  name: string;
  setup: (h: Harness) => void;
  error: new (...args: never[]) => PgrotateError;
  message: RegExp;
  terminateSessions?: boolean;
  account?: Record<string, unknown>;
}

const refusals: Refusal[] = [
  {
    name: 'role missing',
    setup: (h) => h.targets.roles.delete('billing_app'),
    error: RoleNotFoundError,
    message: /role "billing_app" does not exist on target main/,
  },
  {
    name: 'superuser role',
    setup: (h) => Object.assign(h.targets.roles.get('billing_app') as object, { superuser: true }),
    error: SuperuserRefusedError,
    message: /is a superuser; set allowSuperuser/,
  },
  {
    name: 'NOLOGIN role',
    setup: (h) => Object.assign(h.targets.roles.get('billing_app') as object, { canLogin: false }),
    error: RoleCannotLoginError,
    message: /is NOLOGIN/,
  },
  {
    name: 'admin lacks CREATEROLE',
    setup: (h) => (h.targets.admin.createRole = false),
    error: AdminPrivilegeError,
    message: /admin login rotator lacks CREATEROLE/,
  },
  {
    name: 'PostgreSQL 16 admin without ADMIN OPTION',
    setup: (h) => {
      h.targets.admin.serverVersion = 160000;
      Object.assign(h.targets.roles.get('billing_app') as object, { adminOption: false });
    },
    error: AdminPrivilegeError,
    message: /has no ADMIN OPTION on the role/,
  },
  {
    name: 'expired role',
    setup: (h) =>
      Object.assign(h.targets.roles.get('billing_app') as object, { validUntil: new Date(Date.now() - DAY) }),
    error: RoleExpiredError,
    message: /expired at .* \(VALID UNTIL\)/,
  },
  {
    name: 'pg_hba refuses the role from here',
    setup: (h) => (h.targets.probe = { open: false, reason: 'host-refused', message: 'no pg_hba.conf entry' }),
    error: LoginPathClosedError,
    message: /pg_hba.conf refuses a password login .*Nothing was changed/,
  },
  {
    name: 'pg_hba trusts the role',
    setup: (h) => (h.targets.probe = { open: false, reason: 'no-password-needed', message: 'trust' }),
    error: LoginPathClosedError,
    message: /without a password \(trust\)/,
  },
  {
    name: 'login path probe fault',
    setup: (h) => (h.targets.probe = { open: false, reason: 'fault', message: 'timeout expired' }),
    error: TargetUnreachableError,
    message: /cannot probe the login path of role "billing_app" on target main: timeout expired/,
  },
  {
    name: 'provider unreachable',
    setup: (h) => h.provider.failNext('getCurrent', new Error('ECONNREFUSED')),
    error: ProviderError,
    message: /could not read the current value of secret pg\/app in provider mem: ECONNREFUSED/,
  },
  {
    name: 'target unreachable',
    setup: (h) => (h.targets.failAdminWhen = () => true),
    error: TargetUnreachableError,
    message: /target main: cannot connect as admin/,
  },
  {
    name: '--terminate-sessions without pg_signal_backend',
    setup: (h) => (h.targets.admin.signal = false),
    terminateSessions: true,
    error: AdminPrivilegeError,
    message: /GRANT pg_signal_backend TO "rotator"/,
  },
  {
    name: "--terminate-sessions on the admin's own role",
    setup: (h) => (h.targets.admin.name = 'billing_app'),
    terminateSessions: true,
    error: AdminPrivilegeError,
    message: /would end pgrotate's own sessions/,
  },
];

describe('rotation state machine: pre-flight refusals change nothing (I5)', () => {
  it.each(refusals)('$name', async (r) => {
    const h = singleUser(r.account);
    const old = credential('billing_app');
    h.provider.seed('pg/app', { current: old });
    r.setup(h);
    const res = await h.rotate({ terminateSessions: r.terminateSessions ?? false, requestedBy: 'alice' });
    expect(res.outcome).toBe('failed');
    expect(res.error).toBeInstanceOf(r.error);
    expect(res.error?.message).toMatch(r.message);
    expect(res.error?.message).toMatch(/^account billing[: ]/);
    expect(res.error).toMatchObject({ account: 'billing', target: 'main' });
    expect(res.rotationId).toBeNull();
    // No rotation record: only the refusal is recorded, through the store, not the fence.
    expect(h.state.calls).toEqual(['acquire', 'recordRefusal', 'release']);
    expect(h.state.audits).toEqual([
      { account: 'billing', kind: 'rotation.refused', actor: 'alice', detail: { error: res.error?.message } },
    ]);
    expect(h.provider.ops().filter((op) => op !== 'getCurrent')).toEqual([]);
    expect(h.provider.peek('pg/app')).toEqual({ current: old, pending: null, previous: null });
    expect(h.targets.statements().filter((s) => s.startsWith('ALTER'))).toEqual([]);
  });

  it('PostgreSQL 16: an alternating pair missing ADMIN OPTION on both roles names both GRANTs in one error', async () => {
    const h = alternating();
    const old = credential('reports_a');
    h.provider.seed('pg/app', { current: old });
    h.targets.admin.serverVersion = 160000;
    for (const role of ['reports_a', 'reports_b'])
      Object.assign(h.targets.roles.get(role) as object, { adminOption: false });
    const res = await h.rotate();
    expect(res.outcome).toBe('failed');
    expect(res.error).toBeInstanceOf(AdminPrivilegeError);
    expect(res.error?.message).toBe(
      'account reports: cannot change the password of roles "reports_a" and "reports_b" on target main: admin login rotator has no ADMIN OPTION on them (PostgreSQL 16+): ' +
        'GRANT "reports_a" TO "rotator" WITH ADMIN OPTION, INHERIT FALSE, SET FALSE; GRANT "reports_b" TO "rotator" WITH ADMIN OPTION, INHERIT FALSE, SET FALSE',
    );
    expect(h.provider.peek('pg/app')).toEqual({ current: old, pending: null, previous: null });
    expect(h.targets.statements().filter((s) => s.startsWith('ALTER'))).toEqual([]);
  });

  it('PostgreSQL 16: a pair missing ADMIN OPTION on one role names that role only', async () => {
    const h = alternating();
    h.provider.seed('pg/app', { current: credential('reports_a') });
    h.targets.admin.serverVersion = 160000;
    Object.assign(h.targets.roles.get('reports_a') as object, { adminOption: false });
    const res = await h.rotate();
    expect(res.error?.message).toBe(
      'account reports: cannot change the password of role "reports_a" on target main: admin login rotator has no ADMIN OPTION on the role (PostgreSQL 16+): GRANT "reports_a" TO "rotator" WITH ADMIN OPTION, INHERIT FALSE, SET FALSE',
    );
  });

  it('a superuser role with allowSuperuser: true is rotated by a superuser admin', async () => {
    const h = singleUser({ allowSuperuser: true });
    h.targets.admin.superuser = true;
    Object.assign(h.targets.roles.get('billing_app') as object, { superuser: true });
    expect((await h.rotate()).outcome).toBe('succeeded');
  });

  it("--terminate-sessions on an account holding pgrotate's own login is refused", async () => {
    const h = singleUser({}, { ownLogin: () => ({ username: 'billing_app', set: () => undefined }) });
    const res = await h.rotate({ terminateSessions: true });
    expect(res.error).toBeInstanceOf(AdminPrivilegeError);
    expect(res.error?.message).toMatch(/its state or admin login/);
    expect(h.state.calls).toEqual(['acquire', 'recordRefusal', 'release']);
  });

  it('another process holding the fence: busy, nothing touched, nothing recorded', async () => {
    const h = singleUser();
    h.state.heldElsewhere.add('billing');
    const res = await h.rotate();
    expect(res.outcome).toBe('busy');
    expect(res.error).toBeInstanceOf(RotationInProgressError);
    expect(res.error?.message).toBe('account billing: a rotation is already in progress in another process');
    expect(h.state.calls).toEqual(['acquire']);
    expect(h.provider.calls).toEqual([]);
    expect(h.targets.adminSessions).toBe(0);
  });
});

describe('rotation state machine: terminate sessions', () => {
  it('single-user: the role’s other sessions are ended after the new password is live, counted and audited', async () => {
    const h = singleUser();
    Object.assign(h.targets.roles.get('billing_app') as object, { sessions: 4 });
    const res = await h.rotate({ terminateSessions: true, requestedBy: 'hr-system' });
    expect(res).toMatchObject({ outcome: 'succeeded', sessionsEnded: 4 });
    const stmts = h.targets.statements();
    expect(stmts.at(-1)).toMatch(/^SELECT pg_catalog\.pg_terminate_backend\(pid\)/);
    expect(h.targets.sql.at(-1)?.params).toEqual(['billing_app']);
    // Ended in the record step: after the password was applied, verified and promoted.
    expect(stmts.findIndex((s) => s.startsWith('ALTER ROLE'))).toBeLessThan(stmts.length - 1);
    expect(h.state.calls.slice(-2)).toEqual(['succeed', 'release']);
    // The audit trail keeps the order: the steps, then the sessions ended, then the success.
    expect(h.state.auditKinds().slice(-4)).toEqual([
      'rotation.verified',
      'rotation.promoted',
      'sessions.terminated',
      'rotation.succeeded',
    ]);
    expect(h.state.audits.find((e) => e.kind === 'sessions.terminated')).toEqual({
      account: 'billing',
      rotationId: res.rotationId,
      kind: 'sessions.terminated',
      actor: 'hr-system',
      detail: { count: 4 },
    });
    expect(h.state.rotation(res.rotationId)).toMatchObject({ terminateSessions: true, sessionsEnded: 4 });
  });

  it('alternating: the previous role expires now instead of after the grace period, and both roles’ sessions end', async () => {
    const h = alternating();
    const old = credential('reports_a');
    h.provider.seed('pg/app', { current: old });
    await livePassword(h, 'reports_a', old.password);
    Object.assign(h.targets.roles.get('reports_a') as object, { sessions: 2 });
    const before = Date.now();
    const res = await h.rotate({ terminateSessions: true });
    expect(res).toMatchObject({ outcome: 'succeeded', role: 'reports_b', sessionsEnded: 2 });
    expect(res.oldCredentialExpiresAt?.getTime()).toBeGreaterThanOrEqual(before);
    expect(res.oldCredentialExpiresAt?.getTime()).toBeLessThan(before + 3_600_000);
    expect(h.targets.statements().slice(1)).toEqual([
      `ALTER ROLE "reports_b" PASSWORD '<verifier>' VALID UNTIL 'infinity'`,
      `ALTER ROLE "reports_a" VALID UNTIL '<time>'`,
      expect.stringMatching(/pg_terminate_backend/),
      expect.stringMatching(/pg_terminate_backend/),
    ]);
    expect(h.targets.sql.slice(-2).map((q) => q.params)).toEqual([['reports_a'], ['reports_b']]);
    expect(await h.targets.accepts('reports_a', old.password)).toBe(false);
  });

  it('sessions that cannot be ended: the rotation is finished (new password live) but reported failed', async () => {
    const h = singleUser();
    h.targets.terminateFails = true;
    const res = await h.rotate({ terminateSessions: true });
    expect(res.outcome).toBe('failed');
    expect(res.error?.message).toMatch(
      /^account billing: the password was rotated, but sessions on target main could not be ended: permission denied/,
    );
    expect(res.sessionsEnded).toBeNull();
    expect(h.state.calls.slice(-2)).toEqual(['succeed', 'release']);
    expect(h.state.rotation(res.rotationId)?.status).toBe('succeeded');
    expect(h.state.audits.find((e) => e.kind === 'sessions.terminate-failed')?.detail).toEqual({
      error: 'permission denied to terminate process',
    });
    expect(await h.targets.accepts('billing_app', h.provider.peek('pg/app').current?.password as string)).toBe(true);
  });
});

describe('rotation state machine: faults in the middle of a rotation', () => {
  it('stage fails: PostgreSQL untouched, the rotation stays at created with the error noted', async () => {
    const h = singleUser();
    h.provider.failNext('stagePending', new Error('503 Service Unavailable'));
    const res = await h.rotate();
    expect(res.error).toBeInstanceOf(ProviderError);
    expect(res.error?.message).toMatch(/could not stage a pending value in secret pg\/app in provider mem: 503/);
    expect(h.targets.statements().filter((s) => s.startsWith('ALTER'))).toEqual([]);
    expect(h.state.calls).toEqual(['acquire', 'create', 'noteError', 'release']);
    expect(h.state.rotation(res.rotationId)).toMatchObject({ status: 'running', step: 'created' });
  });

  it('apply cannot reach the target: resumable at staged, and the resume applies the staged value', async () => {
    const h = singleUser();
    // Reachable for the pre-flight; gone once a value is staged.
    h.targets.failAdminWhen = () => h.provider.peek('pg/app').pending !== null;
    const first = await h.rotate();
    expect(first.error).toBeInstanceOf(TargetUnreachableError);
    expect(h.state.calls).toEqual(['acquire', 'create', 'advance:staged', 'noteError', 'release']);
    const staged = h.provider.peek('pg/app').pending;
    h.targets.failAdminWhen = null;
    h.clearCalls();
    const second = await h.rotate();
    expect(second).toMatchObject({ outcome: 'succeeded', resumed: true, rotationId: first.rotationId });
    expect(h.state.calls).toEqual(['acquire', 'resume', 'succeed', 'release']);
    expect(h.provider.peek('pg/app').current?.password).toBe(staged?.password);
  });

  it('promote fails: resumable at staged; the resume applies the same value again, verifies, promotes and records', async () => {
    const h = singleUser();
    h.provider.failNext('promotePending', new Error('throttled'));
    const first = await h.rotate();
    expect(first.error?.message).toMatch(
      /could not promote the pending value of secret pg\/app in provider mem: throttled/,
    );
    // Nothing was written between ALTER ROLE and the failed promote; the interruption records
    // the steps passed (applied, verified) with their audit events.
    expect(h.state.calls).toEqual(['acquire', 'create', 'advance:staged', 'noteError', 'release']);
    expect(h.state.auditKinds()).toEqual([
      'rotation.started',
      'rotation.staged',
      'rotation.applied',
      'rotation.verified',
      'rotation.interrupted',
    ]);
    const staged = h.provider.peek('pg/app').pending;
    h.clearCalls();
    const second = await h.rotate();
    expect(second).toMatchObject({ outcome: 'succeeded', resumed: true });
    expect(h.state.calls).toEqual(['acquire', 'resume', 'succeed', 'release']);
    // One read of the pending value serves apply and verify.
    expect(h.provider.ops()).toEqual(['getPending', 'promotePending']);
    expect(h.targets.statements().filter((q) => q.startsWith('ALTER'))).toEqual([
      `ALTER ROLE "billing_app" PASSWORD '<verifier>'`,
    ]);
    expect(h.provider.peek('pg/app').current?.password).toBe(staged?.password);
  });

  it('the fence lost at the staged write: the engine stops writing state and reports it; the next attempt keeps the staged value', async () => {
    const h = singleUser();
    h.state.loseFenceAt = 'staged';
    const first = await h.rotate();
    expect(first.error).toBeInstanceOf(FenceLostError);
    // No noteError through a fence that is gone.
    expect(h.state.calls).toEqual(['acquire', 'create', 'advance:staged', 'release']);
    expect(h.state.rotation(first.rotationId)).toMatchObject({ status: 'running', step: 'created', error: null });
    const staged = h.provider.peek('pg/app').pending;
    h.state.loseFenceAt = null;
    h.clearCalls();
    const second = await h.rotate();
    expect(second).toMatchObject({ outcome: 'succeeded', resumed: true, rotationId: first.rotationId });
    expect(h.state.calls).toEqual(['acquire', 'resume', 'advance:staged', 'succeed', 'release']);
    expect(h.provider.peek('pg/app').current?.password).toBe(staged?.password);
  });

  it('the fence lost at the final record (after the promote): the next attempt proves the promoted value and records it, with no second password', async () => {
    const h = singleUser();
    h.state.loseFenceAt = 'recorded';
    const first = await h.rotate();
    expect(first.error).toBeInstanceOf(FenceLostError);
    expect(h.state.calls).toEqual(['acquire', 'create', 'advance:staged', 'succeed', 'release']);
    expect(h.state.rotation(first.rotationId)).toMatchObject({ status: 'running', step: 'staged', error: null });
    const promoted = h.provider.peek('pg/app').current;
    expect(promoted?.rotationId).toBe(first.rotationId);
    h.state.loseFenceAt = null;
    h.clearCalls();
    const second = await h.rotate();
    expect(second).toMatchObject({ outcome: 'succeeded', resumed: true, rotationId: first.rotationId });
    expect(h.state.calls).toEqual(['acquire', 'resume', 'succeed', 'release']);
    expect(h.targets.statements().filter((q) => q.startsWith('ALTER ROLE'))).toEqual([]);
    expect(h.targets.logins).toEqual([{ user: 'billing_app', ok: true }]);
    expect(h.provider.peek('pg/app').current).toEqual(promoted);
  });
});
