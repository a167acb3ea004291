import { describe, expect, it } from 'vitest';
import { STEPS } from '../../src/core/state/rotation-record.js';
import { makeHarness, TEST_SCRAM_ITERATIONS, type Harness } from './fakes/engine-harness.js';
import { credential, everythingRecorded, livePassword } from './fakes/scenario.js';

// The rotation state machine (src/core/rotation/rotation-engine.ts) over in-memory fakes of the
// fence, the provider and the target: each step of a fresh rotation, for both strategies, with
// the fence steps, provider calls and SQL it asks for. Resume, rollback, stale pending and
// refusals are in rotation-state-machine-*.test.ts. The integration and crash suites run the same
// protocol against real services; these pin down the order of operations in isolation.

const DAY = 86_400_000;
const INSPECT = /FROM pg_catalog\.pg_roles me/;
// Fence writes: the record, the staged step, and the final record that also carries the audit
// events of apply, verify and promote (nothing is written between ALTER ROLE and the promote).
const FRESH_STEPS = ['create', 'advance:staged', 'succeed'];
const FRESH_AUDIT = [
  'rotation.started',
  'rotation.staged',
  'rotation.applied',
  'rotation.verified',
  'rotation.promoted',
  'rotation.succeeded',
];

function singleUser(extra: Record<string, unknown> = {}): Harness {
  const h = makeHarness({ account: { name: 'billing', role: 'billing_app', ...extra } });
  h.targets.addRole('billing_app');
  return h;
}

function alternating(extra: Record<string, unknown> = {}): Harness {
  const h = makeHarness({
    account: {
      name: 'reports',
      strategy: 'alternating',
      roles: ['reports_a', 'reports_b'],
      gracePeriod: '1h',
      ...extra,
    },
  });
  h.targets.addRole('reports_a');
  h.targets.addRole('reports_b');
  return h;
}

describe('rotation state machine: a fresh single-user rotation', () => {
  it('runs created → staged → applied → verified → promoted → recorded, asking each fake for exactly its part', async () => {
    const h = singleUser();
    const old = credential('billing_app');
    h.provider.seed('pg/app', { current: old });
    await livePassword(h, 'billing_app', old.password);
    const before = Date.now();

    const res = await h.rotate({ reason: 'scheduled', requestedBy: 'alice' });

    expect(res).toMatchObject({
      account: 'billing',
      target: 'main',
      outcome: 'succeeded',
      role: 'billing_app',
      resumed: false,
      error: null,
      sessionsEnded: null,
      warnings: [],
    });
    const id = res.rotationId as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    // Fence: taken, staged written, finished with every step's event in order, released.
    expect(h.state.calls).toEqual(['acquire', ...FRESH_STEPS, 'release']);
    expect(h.state.auditKinds()).toEqual(FRESH_AUDIT);
    // Provider: pre-flight read, stage (a stale pending would come back as a conflict, so no
    // read first), promote; verify re-uses the staged value instead of reading it back.
    expect(h.provider.calls).toEqual([
      { op: 'getCurrent', secret: 'pg/app' },
      { op: 'stagePending', secret: 'pg/app', rotationId: id },
      { op: 'promotePending', secret: 'pg/app', rotationId: id },
    ]);
    // Target: one catalogue read for the pre-flight, one ALTER ROLE with a verifier; the
    // pre-flight read VALID UNTIL, so record does not read it again.
    expect(h.targets.sql[0]?.text).toMatch(INSPECT);
    expect(h.targets.sql[0]?.params).toEqual([['billing_app']]);
    expect(h.targets.statements().slice(1)).toEqual([`ALTER ROLE "billing_app" PASSWORD '<verifier>'`]);
    expect(h.targets.sql[1]?.text).toContain(`SCRAM-SHA-256$${TEST_SCRAM_ITERATIONS}:`);
    expect(h.targets.probes).toEqual(['billing_app']);
    expect(h.targets.logins).toEqual([{ user: 'billing_app', ok: true }]);

    // I1/I2: the provider's current is the new credential and the server takes it; the old is
    // kept as previous and no longer logs in.
    const { current, pending, previous } = h.provider.peek('pg/app');
    expect(current).toMatchObject({
      username: 'billing_app',
      host: 'db.example.com',
      port: 5432,
      dbname: 'app',
      engine: 'postgres',
      rotationId: id,
    });
    expect(pending).toBeNull();
    expect(previous).toEqual(old);
    expect(await h.targets.accepts('billing_app', current?.password as string)).toBe(true);
    expect(await h.targets.accepts('billing_app', old.password)).toBe(false);

    const record = h.state.rotation(id);
    expect(record).toMatchObject({
      status: 'succeeded',
      step: 'recorded',
      targetRole: 'billing_app',
      previousRole: 'billing_app',
      reason: 'scheduled',
      requestedBy: 'alice',
      attempts: 1,
    });
    // Single-user: the old password stopped working when the new one was applied.
    expect(res.oldCredentialExpiresAt).toEqual(record?.appliedAt);
    expect(res.oldCredentialExpiresAt?.getTime()).toBeGreaterThanOrEqual(before);
    // Next due: 90 days on, brought forward by the account's spread offset only.
    expect(res.nextDueAt?.getTime()).toBeGreaterThan(before + 80 * DAY);
    expect(res.nextDueAt?.getTime()).toBeLessThanOrEqual(Date.now() + 90 * DAY);
    expect(h.state.account('billing')).toMatchObject({
      activeRole: 'billing_app',
      lastStatus: 'succeeded',
      consecutiveFailures: 0,
      nextDueAt: res.nextDueAt,
    });
    expect(h.observed).toEqual([res]);

    // I4: neither password appears in any SQL, parameter, log line, audit event or record.
    const recorded = everythingRecorded(h);
    expect(recorded).not.toContain(current?.password);
    expect(recorded).not.toContain(old.password);
  });

  it('adopts an account whose secret does not exist yet: previousRole is null, nothing is kept as previous', async () => {
    const h = singleUser();
    const res = await h.rotate();
    expect(res.outcome).toBe('succeeded');
    expect(h.state.calls).toEqual(['acquire', ...FRESH_STEPS, 'release']);
    expect(h.state.rotation(res.rotationId)?.previousRole).toBeNull();
    const { current, previous } = h.provider.peek('pg/app');
    expect(previous).toBeNull();
    expect(await h.targets.accepts('billing_app', current?.password as string)).toBe(true);
  });

  it('renewValidUntil sets the expiry in the same ALTER ROLE as the password, and an expired role is then not refused', async () => {
    const h = singleUser({ renewValidUntil: '120d' });
    (h.targets.roles.get('billing_app') as { validUntil: Date | null }).validUntil = new Date(Date.now() - DAY);
    const res = await h.rotate();
    expect(res.outcome).toBe('succeeded');
    expect(h.targets.statements().slice(1)).toEqual([
      `ALTER ROLE "billing_app" PASSWORD '<verifier>' VALID UNTIL '<time>'`,
    ]);
    const until = h.targets.roles.get('billing_app')?.validUntil?.getTime() ?? 0;
    expect(until).toBeGreaterThan(Date.now() + 119 * DAY);
    expect(until).toBeLessThanOrEqual(Date.now() + 120 * DAY);
    expect(res.warnings).toEqual([]);
  });

  it('warns (and still succeeds) when VALID UNTIL comes before the next due rotation, or the role is at its connection limit', async () => {
    const h = singleUser();
    Object.assign(h.targets.roles.get('billing_app') as object, {
      validUntil: new Date(Date.now() + 10 * DAY),
      connectionLimit: 2,
      sessions: 2,
    });
    const res = await h.rotate();
    expect(res.outcome).toBe('succeeded');
    expect(res.warnings).toHaveLength(2);
    expect(res.warnings[0]).toMatch(/CONNECTION LIMIT \(2 of 2 sessions\)/);
    expect(res.warnings[1]).toMatch(/has VALID UNTIL .* before the next due rotation/);
    expect(h.state.account('billing').warnings).toEqual(res.warnings);
  });

  it("tells pgrotate's own login the new password the moment PostgreSQL accepts it", async () => {
    const told: string[] = [];
    const h = makeHarness({
      account: { name: 'self', role: 'rotator_login' },
      ownLogin: () => ({ username: 'rotator_login', set: (p) => told.push(p) }),
    });
    h.targets.addRole('rotator_login');
    const res = await h.rotate();
    expect(res.outcome).toBe('succeeded');
    expect(told).toEqual([h.provider.peek('pg/app').current?.password]);
  });
});

describe('rotation state machine: a fresh alternating rotation', () => {
  it('adopting a pair (no secret yet) sets the first role and clears the other role’s unmanaged password', async () => {
    const h = alternating();
    await livePassword(h, 'reports_b', 'an-unmanaged-password-nobody-stored');
    const res = await h.rotate();
    expect(res).toMatchObject({ outcome: 'succeeded', role: 'reports_a', oldCredentialExpiresAt: null });
    expect(h.state.calls).toEqual(['acquire', ...FRESH_STEPS, 'release']);
    expect(h.state.rotation(res.rotationId)).toMatchObject({ targetRole: 'reports_a', previousRole: null });
    expect(h.targets.sql[0]?.params).toEqual([['reports_a', 'reports_b']]);
    expect(h.targets.statements().slice(1)).toEqual([
      `ALTER ROLE "reports_a" PASSWORD '<verifier>' VALID UNTIL 'infinity'`,
      // Record step: the other role's password was never in the provider (I1).
      `ALTER ROLE "reports_b" PASSWORD NULL`,
    ]);
    expect(h.targets.roles.get('reports_b')?.verifier).toBeNull();
    expect(await h.targets.accepts('reports_b', 'an-unmanaged-password-nobody-stored')).toBe(false);
    expect(await h.targets.accepts('reports_a', h.provider.peek('pg/app').current?.password as string)).toBe(true);
  });

  it('a current value naming neither role is adoption too: first role, other role cleared', async () => {
    const h = alternating();
    h.provider.seed('pg/app', { current: credential('someone_else') });
    const res = await h.rotate();
    expect(res).toMatchObject({ outcome: 'succeeded', role: 'reports_a' });
    expect(h.state.rotation(res.rotationId)?.previousRole).toBeNull();
    expect(h.targets.statements().at(-1)).toBe(`ALTER ROLE "reports_b" PASSWORD NULL`);
  });

  it('switches to the inactive role; the previous role gets VALID UNTIL now + gracePeriod and keeps working until then', async () => {
    const h = alternating();
    const old = credential('reports_a');
    h.provider.seed('pg/app', { current: old });
    await livePassword(h, 'reports_a', old.password);
    const before = Date.now();

    const res = await h.rotate();

    expect(res).toMatchObject({ outcome: 'succeeded', role: 'reports_b', resumed: false });
    expect(h.state.calls).toEqual(['acquire', ...FRESH_STEPS, 'release']);
    expect(h.state.rotation(res.rotationId)).toMatchObject({ targetRole: 'reports_b', previousRole: 'reports_a' });
    expect(h.targets.statements().slice(1)).toEqual([
      `ALTER ROLE "reports_b" PASSWORD '<verifier>' VALID UNTIL 'infinity'`,
      `ALTER ROLE "reports_a" VALID UNTIL '<time>'`,
    ]);
    const expiry = res.oldCredentialExpiresAt as Date;
    expect(expiry.getTime()).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(expiry.getTime()).toBeLessThanOrEqual(Date.now() + 3_600_000);
    // The statement carries exactly the expiry that was recorded at promote.
    expect(h.targets.sql[2]?.text).toContain(`'${expiry.toISOString()}'`);
    expect(h.state.rotation(res.rotationId)?.oldCredentialExpiresAt).toEqual(expiry);
    expect(h.targets.roles.get('reports_a')?.validUntil).toEqual(expiry);
    // During the grace period both logins work.
    expect(await h.targets.accepts('reports_a', old.password)).toBe(true);
    expect(await h.targets.accepts('reports_b', h.provider.peek('pg/app').current?.password as string)).toBe(true);
    expect(h.provider.peek('pg/app').previous).toEqual(old);
    expect(h.state.account('reports')).toMatchObject({ activeRole: 'reports_b', oldCredentialExpiresAt: expiry });
  });

  it('the next rotation switches back, and its apply clears the expiry the role was given as previous', async () => {
    const h = alternating();
    const first = await h.rotate();
    const second = await h.rotate();
    const third = await h.rotate();
    expect([first.role, second.role, third.role]).toEqual(['reports_a', 'reports_b', 'reports_a']);
    expect([first, second, third].map((r) => r.outcome)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    // After the second rotation reports_a had a grace expiry; the third made it 'infinity' again.
    expect(h.targets.roles.get('reports_a')?.validUntil).toBeNull();
    expect(h.targets.roles.get('reports_b')?.validUntil).toEqual(third.oldCredentialExpiresAt);
    expect(await h.targets.accepts('reports_a', h.provider.peek('pg/app').current?.password as string)).toBe(true);
  });
});

describe('rotation state machine: the protocol steps', () => {
  it('STEPS lists the recorded steps in protocol order (the resume tables below rely on it)', () => {
    expect(STEPS).toEqual(['created', 'staged', 'applied', 'verified', 'promoted', 'recorded']);
  });
});
