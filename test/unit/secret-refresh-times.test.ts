import { describe, expect, it } from 'vitest';
import { parseSecretObject } from '../../src/core/provider/secret-provider.js';
import { makeHarness, type Harness } from './fakes/engine-harness.js';
import { credential, livePassword } from './fakes/scenario.js';

// The secret says when to refresh (issue 27): the stored value carries rotatesAt (the next due
// time, the one the state records) and, for alternating accounts, previousValidUntil (when the
// previous role stops working, decided at stage: at most the VALID UNTIL record sets, which counts
// the grace from the switch). Written at stage, promoted as is.

const HOUR = 3_600_000;

async function singleUser(schedule: unknown): Promise<Harness> {
  const h = makeHarness({ account: { name: 'billing', role: 'billing_app', schedule } });
  const old = credential('billing_app');
  h.provider.seed('pg/app', { current: old });
  await livePassword(h, 'billing_app', old.password);
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

/** The stored current value as a consumer reads it. */
function current(h: Harness): Record<string, unknown> {
  return { ...h.provider.peek('pg/app').current };
}

describe('rotatesAt: the next due time in the secret', () => {
  it('an every schedule: rotatesAt is the next due time the state records, about `every` after the rotation', async () => {
    const h = await singleUser({ every: '30d' });
    const before = Date.now();
    const res = await h.rotate();
    expect(res.outcome).toBe('succeeded');
    const value = current(h);
    expect(typeof value.rotatesAt).toBe('string');
    const at = new Date(value.rotatesAt as string);
    expect(at.toISOString()).toBe(value.rotatesAt);
    // The state and the secret agree to the millisecond.
    expect(h.state.accounts.get('billing')?.nextDueAt?.toISOString()).toBe(value.rotatesAt);
    expect(res.nextDueAt?.toISOString()).toBe(value.rotatesAt);
    // Brought forward by the account's spread offset, never later than `every`.
    expect(at.getTime()).toBeLessThanOrEqual(Date.now() + 30 * 24 * HOUR);
    expect(at.getTime()).toBeGreaterThan(before + 29 * 24 * HOUR);
    // Not the Azure-only metadata: nextDueAt stays out of the stored value.
    expect(value).not.toHaveProperty('nextDueAt');
  });

  it('a cron schedule: rotatesAt is the next cron time (inside its window) the state records', async () => {
    const h = await singleUser({ cron: '0 3 * * *', window: '1h' });
    await h.rotate();
    const value = current(h);
    const at = new Date(value.rotatesAt as string);
    expect(h.state.accounts.get('billing')?.nextDueAt?.toISOString()).toBe(value.rotatesAt);
    expect(at.getUTCHours()).toBe(3);
    expect(at.getTime()).toBeGreaterThan(Date.now());
    expect(at.getTime()).toBeLessThanOrEqual(Date.now() + 25 * HOUR);
  });

  it('a manual schedule: no rotatesAt, and no previousValidUntil for a single role', async () => {
    const h = await singleUser('manual');
    await h.rotate();
    const value = current(h);
    expect(value).not.toHaveProperty('rotatesAt');
    expect(value).not.toHaveProperty('previousValidUntil');
    expect(h.state.accounts.get('billing')?.nextDueAt).toBeNull();
  });
});

describe('previousValidUntil: when the previous role stops working', () => {
  it('absent on the first rotation of a pair (no previous role had a credential), then the grace end of the previous role', async () => {
    const h = alternating();
    const first = await h.rotate();
    expect(first.outcome).toBe('succeeded');
    expect(current(h).username).toBe('reports_a');
    expect(current(h)).not.toHaveProperty('previousValidUntil');

    const before = Date.now();
    const second = await h.rotate();
    expect(second.outcome).toBe('succeeded');
    const value = current(h);
    expect(value.username).toBe('reports_b');
    // The VALID UNTIL record set on the previous role (and the recorded expiry) is the grace end
    // counted from the switch: never earlier than what the secret says, later by at most the
    // time between stage and record.
    const real = h.targets.roles.get('reports_a')?.validUntil as Date;
    const until = new Date(value.previousValidUntil as string).getTime();
    expect(real.getTime()).toBeGreaterThanOrEqual(until);
    expect(real.getTime() - until).toBeLessThanOrEqual(Date.now() - before);
    expect(second.oldCredentialExpiresAt?.getTime()).toBe(real.getTime());
    expect(until).toBeGreaterThanOrEqual(before + HOUR);
    expect(until).toBeLessThanOrEqual(Date.now() + HOUR);
    // The new role's password does not expire (no renewValidUntil).
    expect(h.targets.roles.get('reports_b')?.validUntil).toBeNull();
  });

  it('ending sessions: previousValidUntil is the stage instant, the previous role expired a moment after it', async () => {
    const h = alternating();
    await h.rotate();
    const before = Date.now();
    const res = await h.rotate({ terminateSessions: true });
    expect(res.outcome).toBe('succeeded');
    const value = current(h);
    expect(value.username).toBe('reports_b');
    const real = h.targets.roles.get('reports_a')?.validUntil as Date;
    const announced = new Date(value.previousValidUntil as string).getTime();
    expect(announced).toBeGreaterThanOrEqual(before);
    expect(real.getTime()).toBeGreaterThanOrEqual(announced);
    expect(real.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it('a rotation resumed long after its stage keeps the full grace from the switch; the secret says earlier, never later', async () => {
    const h = alternating({ schedule: { every: '7d' } });
    // A process staged this rotation 10 minutes ago (its secret announces the expiry it knew then) and died.
    const expiry = new Date(Date.now() + HOUR - 600_000);
    const rotatesAt = new Date(Date.now() + 7 * 24 * HOUR - 600_000).toISOString();
    const record = h.state.seedRunning({
      account: 'reports',
      strategy: 'alternating',
      step: 'staged',
      targetRole: 'reports_b',
      previousRole: 'reports_a',
      requestedBy: 'scheduler',
    });
    const old = credential('reports_a');
    const next = { ...credential('reports_b', record.id), rotatesAt, previousValidUntil: expiry.toISOString() };
    await livePassword(h, 'reports_a', old.password);
    h.provider.seed('pg/app', { current: old, pending: next });

    const res = await h.rotate();
    expect(res).toMatchObject({ outcome: 'succeeded', resumed: true });
    expect(current(h)).toMatchObject({ username: 'reports_b', rotatesAt, previousValidUntil: expiry.toISOString() });
    // Applications switched now, so the previous role keeps the whole hour from now, not from the stage.
    const real = h.targets.roles.get('reports_a')?.validUntil as Date;
    expect(real.getTime()).toBeGreaterThanOrEqual(expiry.getTime() + 600_000);
    expect(real.getTime()).toBeLessThanOrEqual(Date.now() + HOUR);
    expect(res.oldCredentialExpiresAt?.getTime()).toBe(real.getTime());
    expect(h.state.accounts.get('reports')?.nextDueAt?.toISOString()).toBe(rotatesAt);
  });

  it('an offboarding joining a staged rotation ends the previous login at record, not at the staged grace end', async () => {
    const h = alternating();
    const staged = new Date(Date.now() + HOUR);
    const record = h.state.seedRunning({
      account: 'reports',
      strategy: 'alternating',
      step: 'staged',
      targetRole: 'reports_b',
      previousRole: 'reports_a',
      requestedBy: 'scheduler',
    });
    const old = credential('reports_a');
    await livePassword(h, 'reports_a', old.password);
    const next = { ...credential('reports_b', record.id), previousValidUntil: staged.toISOString() };
    h.provider.seed('pg/app', { current: old, pending: next });
    const res = await h.rotate({ terminateSessions: true });
    expect(res).toMatchObject({ outcome: 'succeeded', resumed: true });
    const real = h.targets.roles.get('reports_a')?.validUntil as Date;
    expect(real.getTime()).toBeLessThanOrEqual(Date.now());
    expect(res.oldCredentialExpiresAt?.getTime()).toBe(real.getTime());
  });
});

describe('stale refresh times', () => {
  it('a secret that held both (an earlier schedule) loses them when the new value has none; they are never kept keys', async () => {
    const h = makeHarness({ account: { name: 'billing', role: 'billing_app', schedule: 'manual' } });
    // Read as a real store reads its JSON: the two times are owned fields, `team` a kept key.
    const json = {
      ...credential('billing_app'),
      rotatesAt: '2026-01-01T00:00:00.000Z',
      previousValidUntil: 'x',
      team: 't',
    };
    const old = parseSecretObject(json, { provider: 'mem', secret: 'pg/app' });
    expect(old.extra).toEqual({ team: 't' });
    h.provider.seed('pg/app', { current: old });
    await livePassword(h, 'billing_app', old.password);
    expect((await h.rotate()).outcome).toBe('succeeded');
    const value = current(h);
    expect(value).not.toHaveProperty('rotatesAt');
    expect(value).not.toHaveProperty('previousValidUntil');
    expect(value.extra).toEqual({ team: 't' });
  });
});
