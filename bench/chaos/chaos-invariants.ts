import pg from 'pg';
import type { HeldValues, ProviderSampler, SampledAccount } from './provider-sampler.js';

// The chaos harness's checks, each with real logins against the target database:
// I1 no live password outside the provider, I2 a finished account's current value logs in,
// I3 no two rotations of one account overlapped (from the audit trail).

export interface ChaosAccount extends SampledAccount {
  strategy: 'single-user' | 'alternating';
  roles: string[];
}

export interface LoginTarget {
  host: string;
  port: number;
  database: string;
}

/** 'ok', 'refused' (authentication failed) or an error code for anything else. */
export async function tryLogin(
  target: LoginTarget,
  user: string,
  password: string,
): Promise<'ok' | 'refused' | string> {
  const c = new pg.Client({
    ...target,
    user,
    password,
    connectionTimeoutMillis: 5000,
    application_name: 'chaos-check',
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.end();
    return 'ok';
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'error';
    // 28P01 wrong password, 28000 no pg_hba/login, VALID UNTIL passed also answers 28P01.
    return code === '28P01' || code === '28000' ? 'refused' : code;
  }
}

async function inParallel<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** I1 and I2 for every account; returns violation descriptions (no passwords in them). */
export async function checkCredentials(
  target: LoginTarget,
  accounts: ChaosAccount[],
  sampler: ProviderSampler,
  running: Set<string>,
): Promise<{ violations: string[]; logins: number }> {
  const violations: string[] = [];
  let logins = 0;
  for (const a of accounts) {
    const held: HeldValues = await sampler.held(a);
    const allowed = new Set<string>();
    for (const v of [held.current, held.pending, a.strategy === 'alternating' ? held.previous : null])
      if (v) allowed.add(`${v.username}\u0000${v.password}`);
    const checks = a.roles.flatMap((role) => [...sampler.candidates(a.name)].map((pw) => ({ role, pw })));
    await inParallel(checks, 6, async ({ role, pw }) => {
      const r = await retryOnFault(() => tryLogin(target, role, pw));
      logins++;
      if (r === 'ok' && !allowed.has(`${role}\u0000${pw}`))
        violations.push(
          `I1 account ${a.name}: role ${role} accepts a password that is not the provider's current/pending${a.strategy === 'alternating' ? '/previous' : ''}`,
        );
      else if (r !== 'ok' && r !== 'refused')
        violations.push(`I1 account ${a.name}: login check for role ${role} failed with ${r}`);
    });
    if (running.has(a.name)) continue; // an unfinished rotation: current may be mid-apply (single-user window)
    if (!held.current) {
      violations.push(`I2 account ${a.name}: no current value after a finished rotation`);
      continue;
    }
    const r = await retryOnFault(() =>
      tryLogin(target, held.current?.username as string, held.current?.password as string),
    );
    logins++;
    if (r !== 'ok')
      violations.push(
        `I2 account ${a.name}: current credential (role ${held.current.username}) does not log in (${r})`,
      );
  }
  return { violations, logins };
}

async function retryOnFault(fn: () => Promise<string>): Promise<string> {
  let r = await fn();
  for (let i = 0; i < 3 && r !== 'ok' && r !== 'refused'; i++) {
    await new Promise((res) => setTimeout(res, 500));
    r = await fn();
  }
  return r;
}

/** I3 from `rotation.started` … `rotation.succeeded|failed` per rotation id, per account. */
export async function checkNoOverlap(
  state: pg.ClientConfig,
  schema: string,
): Promise<{ violations: string[]; started: number; succeeded: number; failed: number }> {
  const c = new pg.Client({ ...state, application_name: 'chaos-check' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    const rows = (
      await c.query<{ account: string; rotation_id: string; kind: string; at: Date }>(
        `SELECT account, rotation_id, kind, at FROM "${schema}".audit_events
          WHERE kind IN ('rotation.started', 'rotation.succeeded', 'rotation.failed') AND rotation_id IS NOT NULL ORDER BY at, id`,
      )
    ).rows;
    const spans = new Map<string, { account: string; start: number; end: number }>();
    let succeeded = 0;
    let failed = 0;
    for (const r of rows) {
      const t = r.at.getTime();
      if (r.kind === 'rotation.started') {
        if (!spans.has(r.rotation_id))
          spans.set(r.rotation_id, { account: r.account, start: t, end: Number.POSITIVE_INFINITY });
        continue;
      }
      if (r.kind === 'rotation.succeeded') succeeded++;
      else failed++;
      const s = spans.get(r.rotation_id);
      if (s && s.end === Number.POSITIVE_INFINITY) s.end = t;
    }
    const violations: string[] = [];
    const byAccount = new Map<string, Array<{ id: string; start: number; end: number }>>();
    for (const [id, s] of spans) {
      const list = byAccount.get(s.account) ?? [];
      list.push({ id, start: s.start, end: s.end });
      byAccount.set(s.account, list);
    }
    for (const [account, list] of byAccount) {
      list.sort((a, b) => a.start - b.start);
      let last = list[0];
      for (const cur of list.slice(1)) {
        if (last && cur.start < last.end)
          violations.push(`I3 account ${account}: rotation ${cur.id} started while rotation ${last.id} was unfinished`);
        if (!last || cur.end > last.end) last = cur;
      }
    }
    return { violations, started: spans.size, succeeded, failed };
  } finally {
    await c.end();
  }
}

/**
 * What pgrotate reported against what the providers hold (the round-end half of "a reported
 * outcome matches reality"): every rotation recorded as succeeded had its value made the
 * provider's current; for every account with nothing running, the state's last rotation is the
 * provider's current value, and `status --json` names the role that value belongs to.
 */
export async function checkReportedState(
  state: pg.ClientConfig,
  schema: string,
  accounts: ChaosAccount[],
  sampler: ProviderSampler,
  running: Set<string>,
  statusJson: string,
): Promise<string[]> {
  const c = new pg.Client({ ...state, application_name: 'chaos-check' });
  c.on('error', () => undefined);
  await c.connect();
  const violations: string[] = [];
  try {
    const succeeded = (
      await c.query<{ account: string; id: string }>(
        `SELECT account, id FROM "${schema}".rotations WHERE status = 'succeeded'`,
      )
    ).rows;
    for (const r of succeeded) {
      if (!sampler.seenCurrent(r.account).has(r.id))
        violations.push(
          `R account ${r.account}: rotation ${r.id} is recorded as succeeded, but its value never became the provider's current`,
        );
    }
    const last = new Map(
      (
        await c.query<{ name: string; id: string | null }>(
          `SELECT name, last_rotation_id AS id FROM "${schema}".accounts`,
        )
      ).rows.map((r) => [r.name, r.id] as const),
    );
    let status: Map<string, { activeRole: string | null; rotationInProgress: boolean }> | null = null;
    try {
      const doc = JSON.parse(statusJson) as {
        accounts: Array<{ name: string; activeRole: string | null; rotationInProgress: boolean }>;
      };
      status = new Map(doc.accounts.map((a) => [a.name, a]));
    } catch {
      violations.push('R status --json did not print a JSON document');
    }
    for (const a of accounts) {
      if (running.has(a.name)) continue;
      const lastId = last.get(a.name) ?? null;
      let cur = await sampler.current(a);
      for (let i = 0; i < 5 && !cur && lastId; i++) {
        await new Promise((r) => setTimeout(r, 500)); // the provider recovering from a fault
        cur = await sampler.current(a);
      }
      if (lastId && cur?.rotationId !== lastId) {
        violations.push(
          `R account ${a.name}: the state records rotation ${lastId} as the last one, the provider's current is from ${cur?.rotationId ?? 'no rotation'}`,
        );
      }
      const s = status?.get(a.name);
      if (status && !s) violations.push(`R account ${a.name}: missing from status --json`);
      if (s && cur && lastId && s.activeRole !== cur.username)
        violations.push(
          `R account ${a.name}: status --json says the active role is ${s.activeRole}, the provider's current is for ${cur.username}`,
        );
      if (s?.rotationInProgress)
        violations.push(`R account ${a.name}: status --json shows a rotation in progress, the state has none running`);
    }
  } finally {
    await c.end();
  }
  return violations;
}
