import { describe, expect, it } from 'vitest';
import type { SecretValue } from '../../src/core/provider/secret-provider.js';
import { STEPS, type Step } from '../../src/core/state/rotation-record.js';
import { makeHarness, type Harness } from './fakes/engine-harness.js';
import { credential, everythingRecorded, livePassword } from './fakes/scenario.js';

// Resume from every recorded step: the fake fence hands the engine an unfinished rotation as a
// crashed process would have left it, with the provider and the catalogue in the matching
// state, and the engine must do exactly the remaining steps (no pre-flight, no second stage).

const HOUR = 3_600_000;
type Strategy = 'single-user' | 'alternating';

interface Seeded {
  h: Harness;
  id: string;
  targetRole: string;
  /** The credential applications used before this rotation. */
  old: SecretValue;
  /** This rotation's credential, as the crashed process staged it. */
  next: SecretValue;
  appliedAt: Date;
  /** What the crashed process recorded at promote (null when it had not got there). */
  expiry: Date | null;
}

/**
 * An account whose rotation stopped after `step` completed. `promoted`: the provider already
 * promoted this rotation's value (a crash after promotePending, before its step was recorded).
 */
async function seedAt(
  strategy: Strategy,
  step: Step,
  opts: { promoted?: boolean; stagedBeforeCrash?: boolean; renewValidUntil?: string } = {},
): Promise<Seeded> {
  const single = strategy === 'single-user';
  const renew = opts.renewValidUntil ? { renewValidUntil: opts.renewValidUntil } : {};
  const h = single
    ? makeHarness({ account: { name: 'billing', role: 'billing_app', ...renew } })
    : makeHarness({ account: { name: 'reports', strategy, roles: ['reports_a', 'reports_b'], gracePeriod: '1h' } });
  const previousRole = single ? 'billing_app' : 'reports_a';
  const targetRole = single ? 'billing_app' : 'reports_b';
  if (!single) h.targets.addRole('reports_b');
  const at = STEPS.indexOf(step);
  const appliedAt = new Date(Date.now() - 60_000);
  const expiry = at >= STEPS.indexOf('promoted') ? (single ? appliedAt : new Date(Date.now() + HOUR - 60_000)) : null;
  const record = h.state.seedRunning({
    account: h.account.name,
    strategy,
    step,
    targetRole,
    previousRole,
    requestedBy: 'scheduler',
    ...(at >= STEPS.indexOf('applied') ? { appliedAt } : {}),
    ...(expiry ? { oldCredentialExpiresAt: expiry } : {}),
  });
  const old = credential(previousRole);
  const next = credential(targetRole, record.id);
  await livePassword(h, previousRole, old.password);
  if (at >= STEPS.indexOf('applied') || opts.promoted) await livePassword(h, targetRole, next.password);
  const promoted = opts.promoted || at >= STEPS.indexOf('promoted');
  if (promoted) h.provider.seed('pg/app', { current: next, previous: old });
  else
    h.provider.seed('pg/app', {
      current: old,
      pending: at >= STEPS.indexOf('staged') || opts.stagedBeforeCrash ? next : null,
    });
  return { h, id: record.id, targetRole, old, next, appliedAt, expiry };
}

/**
 * The fence writes still to come after `step`: only `staged` is written on its own; apply,
 * verify and promote are idempotent and go with the final record.
 */
function remainingAdvances(step: Step): string[] {
  return step === 'created' ? ['advance:staged'] : [];
}

/** The audit events of the steps a resume from `step` passes, written with the final record. */
function remainingStepEvents(step: Step): string[] {
  return STEPS.slice(STEPS.indexOf(step) + 1, STEPS.indexOf('promoted') + 1).map((s) => `rotation.${s}`);
}

/** Provider calls a resume from `step` makes (see the engine's stage/apply/verify/promote). */
const PROVIDER_OPS: Record<Step, string[]> = {
  // No pending read before staging (a conflicting pending value comes back as a
  // PendingConflictError); the current value is read for the keys the new value keeps.
  created: ['getCurrent', 'stagePending', 'promotePending'],
  // apply reads the pending value back (this process did not stage it); verify re-uses it.
  staged: ['getPending', 'promotePending'],
  applied: ['getPending', 'promotePending'],
  verified: ['promotePending'],
  promoted: [],
  recorded: [],
};

function expectedSql(strategy: Strategy, step: Step): string[] {
  const applies = STEPS.indexOf(step) < STEPS.indexOf('applied');
  if (strategy === 'single-user') {
    // A resumed rotation did no pre-flight, so record reads VALID UNTIL itself.
    return [
      ...(applies ? [`ALTER ROLE "billing_app" PASSWORD '<verifier>'`] : []),
      'SELECT rolvaliduntil AS v FROM pg_catalog.pg_roles WHERE rolname = $1',
    ];
  }
  return [
    ...(applies ? [`ALTER ROLE "reports_b" PASSWORD '<verifier>' VALID UNTIL 'infinity'`] : []),
    `ALTER ROLE "reports_a" VALID UNTIL '<time>'`,
  ];
}

describe.each<Strategy>(['single-user', 'alternating'])(
  'rotation state machine: %s resume from every recorded step',
  (strategy) => {
    it.each(STEPS)('resumes after %s and does only the remaining steps', async (step) => {
      const s = await seedAt(strategy, step);
      const { h } = s;
      const started = Date.now();

      const res = await h.rotate({ requestedBy: 'worker-2' });

      expect(res).toMatchObject({
        outcome: 'succeeded',
        resumed: true,
        rotationId: s.id,
        role: s.targetRole,
        error: null,
      });
      expect(h.state.calls).toEqual(['acquire', 'resume', ...remainingAdvances(step), 'succeed', 'release']);
      expect(h.state.audits[0]).toMatchObject({
        kind: 'rotation.resumed',
        rotationId: s.id,
        actor: 'worker-2',
        detail: { step },
      });
      // Every step the resume passed is in the audit trail, in order, before the success.
      expect(h.state.auditKinds()).toEqual(['rotation.resumed', ...remainingStepEvents(step), 'rotation.succeeded']);
      expect(h.provider.ops()).toEqual(PROVIDER_OPS[step]);
      expect(h.targets.statements()).toEqual(expectedSql(strategy, step));
      // No pre-flight on a resume: no catalogue inspection, no login-path probe.
      expect(h.targets.probes).toEqual([]);
      const verifies = STEPS.indexOf(step) < STEPS.indexOf('verified');
      expect(h.targets.logins).toEqual(verifies ? [{ user: s.targetRole, ok: true }] : []);

      const record = h.state.rotation(s.id);
      expect(record).toMatchObject({ status: 'succeeded', step: 'recorded', attempts: 2 });
      const { current, pending, previous } = h.provider.peek('pg/app');
      expect(current?.rotationId).toBe(s.id);
      expect(pending).toBeNull();
      expect(previous).toEqual(s.old);
      // A value the crashed process staged is the one that goes live, never a second password.
      if (step !== 'created') expect(current?.password).toBe(s.next.password);
      expect(await h.targets.accepts(s.targetRole, current?.password as string)).toBe(true);

      // The old credential's expiry: a recorded one is re-used as is; otherwise it is decided now.
      if (s.expiry) expect(res.oldCredentialExpiresAt).toEqual(s.expiry);
      else if (strategy === 'single-user' && step !== 'created' && step !== 'staged')
        expect(res.oldCredentialExpiresAt).toEqual(s.appliedAt);
      else if (strategy === 'single-user')
        expect(res.oldCredentialExpiresAt?.getTime()).toBeGreaterThanOrEqual(started);
      else expect(res.oldCredentialExpiresAt?.getTime()).toBeGreaterThanOrEqual(started + HOUR);
      if (strategy === 'alternating') {
        expect(h.targets.roles.get('reports_a')?.validUntil).toEqual(res.oldCredentialExpiresAt);
        expect(h.targets.sql.at(-1)?.text).toContain(`'${res.oldCredentialExpiresAt?.toISOString()}'`);
      }
      expect(everythingRecorded(h)).not.toContain(s.next.password);
    });

    it.each<Step>(['applied', 'verified'])(
      'resumes after %s when the provider had already promoted the value (crash after promote)',
      async (step) => {
        const s = await seedAt(strategy, step, { promoted: true });
        const { h } = s;
        const res = await h.rotate();
        expect(res).toMatchObject({ outcome: 'succeeded', resumed: true, rotationId: s.id });
        expect(h.state.calls).toEqual(['acquire', 'resume', 'succeed', 'release']);
        // Verify finds no pending value of this rotation and proves the promoted current instead;
        // promote is then a no-op.
        expect(h.provider.ops()).toEqual(
          step === 'applied' ? ['getPending', 'getCurrent', 'promotePending'] : ['promotePending'],
        );
        expect(h.targets.logins).toEqual(step === 'applied' ? [{ user: s.targetRole, ok: true }] : []);
        expect(h.provider.peek('pg/app')).toEqual({ current: s.next, pending: null, previous: s.old });
      },
    );

    it('restages when the value staged before the crash vanished from the provider', async () => {
      const s = await seedAt(strategy, 'staged');
      const { h } = s;
      h.provider.seed('pg/app', { pending: null });
      const res = await h.rotate();
      expect(res).toMatchObject({ outcome: 'succeeded', resumed: true, rotationId: s.id });
      // apply found nothing to apply and the current value is not this rotation's: back to
      // created, a new value staged.
      expect(h.state.calls).toEqual(['acquire', 'resume', 'advance:staged', 'succeed', 'release']);
      expect(h.provider.ops()).toEqual(['getPending', 'getCurrent', 'stagePending', 'promotePending']);
      const current = h.provider.peek('pg/app').current;
      expect(current?.rotationId).toBe(s.id);
      expect(current?.password).not.toBe(s.next.password);
      expect(await h.targets.accepts(s.targetRole, current?.password as string)).toBe(true);
    });

    it('resumes after staged when the provider had already promoted the value (a crash after promote, before the final record): no second password', async () => {
      const s = await seedAt(strategy, 'staged', { promoted: true });
      const { h } = s;
      const res = await h.rotate();
      expect(res).toMatchObject({ outcome: 'succeeded', resumed: true, rotationId: s.id });
      expect(h.state.calls).toEqual(['acquire', 'resume', 'succeed', 'release']);
      // apply finds no pending value, sees its own value current, and verify proves that one.
      expect(h.provider.ops()).toEqual(['getPending', 'getCurrent', 'getPending', 'getCurrent', 'promotePending']);
      expect(h.targets.statements().filter((q) => q.startsWith('ALTER ROLE') && q.includes('PASSWORD'))).toEqual([]);
      expect(h.targets.logins).toEqual([{ user: s.targetRole, ok: true }]);
      expect(h.provider.peek('pg/app')).toEqual({ current: s.next, pending: null, previous: s.old });
      expect(h.state.auditKinds()).toEqual([
        'rotation.resumed',
        'rotation.verified',
        'rotation.promoted',
        'rotation.succeeded',
      ]);
    });

    it('resumes after created with the value already staged (crash between stagePending and recording it): keeps that value', async () => {
      const s = await seedAt(strategy, 'created', { stagedBeforeCrash: true });
      const { h } = s;
      const res = await h.rotate();
      expect(res.outcome).toBe('succeeded');
      expect(h.provider.ops()).toEqual(['getCurrent', 'stagePending', 'promotePending']);
      expect(h.state.auditKinds()).not.toContain('rotation.stale-pending-discarded');
      expect(h.provider.peek('pg/app').current?.password).toBe(s.next.password);
    });
  },
);

describe('rotation state machine: resume details', () => {
  it('a resumer that asks to end sessions (offboarding) has the rest of the rotation end them', async () => {
    const s = await seedAt('single-user', 'verified');
    const { h } = s;
    (h.targets.roles.get('billing_app') as { sessions: number }).sessions = 3;
    const res = await h.rotate({ terminateSessions: true, requestedBy: 'hr-system' });
    expect(res).toMatchObject({ outcome: 'succeeded', resumed: true, sessionsEnded: 3 });
    expect(h.state.rotation(s.id)).toMatchObject({ terminateSessions: true, sessionsEnded: 3 });
    expect(h.state.audits[0]).toMatchObject({
      kind: 'rotation.resumed',
      detail: { step: 'verified', terminateSessions: true },
    });
    expect(h.targets.statements().at(-1)).toMatch(/pg_terminate_backend/);
    expect(h.targets.sql.at(-1)?.params).toEqual(['billing_app']);
    // The audit names who asked for the sessions to end: this resumer, not the rotation's starter.
    expect(h.state.audits.find((e) => e.kind === 'sessions.terminated')).toMatchObject({
      actor: 'hr-system',
      detail: { count: 3 },
    });
  });

  it('a rotation recorded with terminateSessions keeps ending sessions when a plain resume finishes it', async () => {
    const s = await seedAt('alternating', 'promoted');
    const { h } = s;
    const r = h.state.rotation(s.id) as { terminateSessions: boolean };
    r.terminateSessions = true;
    Object.assign(h.targets.roles.get('reports_a') as object, { sessions: 2 });
    Object.assign(h.targets.roles.get('reports_b') as object, { sessions: 1 });
    const res = await h.rotate();
    expect(res).toMatchObject({ outcome: 'succeeded', sessionsEnded: 3 });
    expect(h.targets.sql.filter((q) => /pg_terminate_backend/.test(q.text)).map((q) => q.params)).toEqual([
      ['reports_a'],
      ['reports_b'],
    ]);
    expect(h.state.audits.find((e) => e.kind === 'sessions.terminated')?.actor).toBe('scheduler');
  });

  it('a resumed single-user record reads VALID UNTIL itself and warns when it comes before the next due rotation', async () => {
    const s = await seedAt('single-user', 'promoted');
    const { h } = s;
    (h.targets.roles.get('billing_app') as { validUntil: Date | null }).validUntil = new Date(Date.now() + 86_400_000);
    const res = await h.rotate();
    expect(res.outcome).toBe('succeeded');
    expect(res.warnings).toEqual([expect.stringMatching(/has VALID UNTIL .* before the next due rotation/)]);
  });

  it('single-user: resumed at applied with its pending value gone (a rollback cut short) fails the rotation; the next one starts afresh', async () => {
    const s = await seedAt('single-user', 'applied');
    // The rollback restored the previous password and discarded the pending value, then the
    // process died before it could mark the rotation failed.
    await livePassword(s.h, 'billing_app', s.old.password);
    s.h.provider.seed('pg/app', { current: s.old, pending: null });
    const res = await s.h.rotate();
    expect(res.outcome).toBe('failed');
    expect(res.error?.message).toMatch(
      new RegExp(
        `the pending credential of rotation ${s.id} is missing from provider mem; the provider's current value logs in; the rotation is marked failed`,
      ),
    );
    expect(s.h.state.auditKinds().at(-1)).toBe('rotation.failed');
    const next = await s.h.rotate();
    expect(next).toMatchObject({ outcome: 'succeeded', resumed: false });
    expect(next.rotationId).not.toBe(s.id);
  });

  it("alternating: resumed at applied with its pending value gone removes the inactive role's password and fails", async () => {
    const s = await seedAt('alternating', 'applied');
    s.h.provider.seed('pg/app', { current: s.old, pending: null });
    const res = await s.h.rotate();
    expect(res.outcome).toBe('failed');
    expect(res.error?.message).toMatch(
      /the password of inactive role "reports_b" was removed; applications keep using role "reports_a"/,
    );
    expect(s.h.targets.roles.get('reports_b')?.verifier).toBeNull();
    const next = await s.h.rotate();
    expect(next).toMatchObject({ outcome: 'succeeded', resumed: false });
  });

  it('renewValidUntil: a resumed rotation sets VALID UNTIL again when it was moved earlier while unfinished', async () => {
    const DAY = 86_400_000;
    const s = await seedAt('single-user', 'verified', { renewValidUntil: '120d' });
    const role = s.h.targets.roles.get('billing_app') as { validUntil: Date | null };
    role.validUntil = new Date('2000-01-01T00:00:00Z');
    const res = await s.h.rotate();
    expect(res).toMatchObject({ outcome: 'succeeded', resumed: true });
    expect(role.validUntil?.getTime() ?? 0).toBeGreaterThan(Date.now() + 119 * DAY);
    expect(res.warnings.join('\n')).toMatch(
      /role "billing_app" had VALID UNTIL 2000-01-01T00:00:00.000Z when this unfinished rotation resumed; renewValidUntil set it to /,
    );
    // As apply left it: nothing to set.
    const t = await seedAt('single-user', 'verified', { renewValidUntil: '120d' });
    const r2 = t.h.targets.roles.get('billing_app') as { validUntil: Date | null };
    const asApplied = new Date(t.appliedAt.getTime() + 120 * DAY);
    r2.validUntil = asApplied;
    const again = await t.h.rotate();
    expect(again).toMatchObject({ outcome: 'succeeded', resumed: true, warnings: [] });
    expect(r2.validUntil?.getTime()).toBe(asApplied.getTime());
  });

  it('a dry run on an account with an unfinished rotation changes nothing and says a real run resumes it', async () => {
    const s = await seedAt('single-user', 'staged');
    const { h } = s;
    const before = h.provider.peek('pg/app');
    const res = await h.rotate({ dryRun: true });
    expect(res).toMatchObject({ outcome: 'dry-run', resumed: false, rotationId: s.id });
    expect(res.warnings.join('\n')).toMatch(
      new RegExp(`rotation ${s.id} is unfinished at step staged; a run without --dry-run resumes it`),
    );
    expect(h.provider.peek('pg/app')).toEqual(before);
    expect(h.state.steps()).not.toContain('resume');
  });
});
