import { readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { quoteIdent } from '../../src/core/pg/quote.js';
import { tryLogin, type ChaosAccount, type LoginTarget } from './chaos-invariants.js';
import type { CurrentReader } from './current-reader.js';
import type { FaultKind } from './fault-kinds.js';
import type { Credential, ProviderSampler } from './provider-sampler.js';

// Faults aimed at one account while the workers go on rotating the others: a role at its
// connection limit, pg_hba.conf rejecting the role (before the request, or between apply and
// verify), VALID UNTIL in the past (refused, or renewed by renewValidUntil), a scheduled
// rotation racing `offboard --terminate-sessions`, and a worker SIGKILLed while it records a
// permanent failure. Each checks, with real logins and pg_authid / pg_stat_activity / the
// provider, that what pgrotate reported is what happened (no "rotated" or "sessions ended"
// that did not happen, "nothing was changed" only when nothing was).

/** One result line of `rotate --json` / `offboard --json` (the documented shape). */
export interface ResultLine {
  account: string;
  outcome: string;
  rotationId: string | null;
  sessionsEnded: number | null;
  resumed: boolean;
  warnings?: string[];
  error: { type: string; message: string; permanent?: boolean } | null;
}

export interface CliOutput {
  code: number | null;
  stdout: string;
}

/** What the faults need from the harness. */
export interface FaultEnv {
  target: LoginTarget;
  sampler: ProviderSampler;
  reader: CurrentReader;
  hbaFile: string;
  schema: string;
  /** Run the CLI (inline config: no queue) and return its exit code and stdout. */
  inline(args: string[], env?: NodeJS.ProcessEnv, timeoutMs?: number): Promise<CliOutput>;
  /** Run the CLI with the round's queue config (requests go to the workers). */
  queued(args: string[], timeoutMs?: number): Promise<CliOutput>;
  /** A superuser connection to the target database (ALTER ROLE, pg_authid, pg_stat_activity, reload). */
  su(): Promise<pg.Client>;
  /** A query on the state database. */
  state<T extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<T[]>;
  fault(kind: FaultKind, what: string): void;
  violation(what: string): void;
  log(msg: string): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withSu<T>(env: FaultEnv, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    let c: pg.Client | null = null;
    try {
      c = await env.su();
      return await fn(c);
    } catch (err) {
      // PostgreSQL may be restarting (another fault): try again for a while.
      if (i >= 20) throw err;
      await sleep(500);
    } finally {
      await c?.end().catch(() => undefined);
    }
  }
}

async function rolpasswords(env: FaultEnv, roles: string[]): Promise<string> {
  return withSu(env, async (c) => {
    const rows = (
      await c.query<{ r: string; p: string | null }>(
        'SELECT rolname AS r, rolpassword AS p FROM pg_authid WHERE rolname = ANY($1) ORDER BY rolname',
        [roles],
      )
    ).rows;
    return rows.map((r) => `${r.r}=${r.p ?? ''}`).join(';');
  });
}

/** Audit events of the account after `since` (state-database clock), except the ones listed. */
async function activitySince(env: FaultEnv, account: string, since: Date, except: string[]): Promise<string[]> {
  const rows = await env.state<{ kind: string }>(
    `SELECT kind FROM "${env.schema}".audit_events WHERE account = $1 AND at >= $2 AND NOT (kind = ANY($3)) ORDER BY id`,
    [account, since, except],
  );
  return rows.map((r) => r.kind);
}

/**
 * Rotations of `account` other than `reported` that started or resumed since `since`. pgrotate
 * writes a rotation's apply, verify and promote events with its final record, so one still in
 * flight shows only its start (or resume) in the audit trail, although it may have promoted.
 */
async function otherRotationsSince(
  env: FaultEnv,
  account: string,
  since: Date,
  reported: string | null,
): Promise<number> {
  const rows = await env.state<{ n: string }>(
    `SELECT count(DISTINCT rotation_id) AS n FROM "${env.schema}".audit_events
      WHERE account = $1 AND at >= $2 AND kind IN ('rotation.started', 'rotation.resumed')
        AND rotation_id IS DISTINCT FROM $3::uuid`,
    [account, since, reported],
  );
  return Number(rows[0]?.n ?? 0);
}

/** When the target's server last started (a restart ends every session). */
async function postmasterStart(env: FaultEnv): Promise<number> {
  return withSu(env, async (c) =>
    ((await c.query<{ t: Date }>('SELECT pg_postmaster_start_time() AS t')).rows[0]?.t ?? new Date(0)).getTime(),
  );
}

async function stateNow(env: FaultEnv): Promise<Date> {
  const rows = await env.state<{ now: Date }>('SELECT clock_timestamp() AS now');
  return rows[0]?.now ?? new Date();
}

function parseResults(stdout: string): { lines: ResultLine[]; doc: Record<string, unknown> | null } {
  try {
    const doc = JSON.parse(stdout) as Record<string, unknown>;
    const lines = Array.isArray(doc.results) ? (doc.results as ResultLine[]) : [];
    return { lines, doc };
  } catch {
    return { lines: [], doc: null };
  }
}

/** Run an inline `rotate ACCOUNT --json`, again while another process holds the account (exit 3). */
async function rotateInline(
  env: FaultEnv,
  account: string,
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<ResultLine | null> {
  for (let i = 0; i < 8; i++) {
    const out = await env.inline(['rotate', account, '--json', '--reason', 'chaos-fault'], extraEnv, 60_000);
    const line = parseResults(out.stdout).lines[0] ?? null;
    if (line && line.outcome !== 'busy') return line;
    await sleep(700);
  }
  return null;
}

/**
 * A reported success must be real: the rotation record succeeded, its value became the
 * provider's current, and (unless a later rotation replaced it) the provider's current is that
 * value and logs in.
 */
export async function checkReportedSuccess(
  env: FaultEnv,
  a: ChaosAccount,
  line: ResultLine,
  context: string,
): Promise<void> {
  if (line.outcome !== 'succeeded') return;
  if (!line.rotationId)
    return env.violation(`${context}: account ${a.name} reported "succeeded" without a rotation id`);
  const rec = await env.state<{ status: string }>(`SELECT status FROM "${env.schema}".rotations WHERE id = $1`, [
    line.rotationId,
  ]);
  if (rec[0]?.status !== 'succeeded')
    return env.violation(
      `${context}: account ${a.name} reported rotation ${line.rotationId} succeeded; the state database says ${rec[0]?.status ?? 'no such rotation'}`,
    );
  // The sampler reads the stores directly; a sealed OpenBao (another fault) delays it.
  for (let i = 0; i < 20 && !env.sampler.seenCurrent(a.name).has(line.rotationId); i++) {
    await env.sampler.sample().catch(() => undefined);
    if (!env.sampler.seenCurrent(a.name).has(line.rotationId)) await sleep(500);
  }
  if (!env.sampler.seenCurrent(a.name).has(line.rotationId)) {
    return env.violation(
      `${context}: account ${a.name} reported rotation ${line.rotationId} succeeded, but its value never became the provider's current`,
    );
  }
  const later = await env.state<{ n: string }>(
    `SELECT count(*) AS n FROM "${env.schema}".rotations WHERE account = $1 AND started_at > (SELECT started_at FROM "${env.schema}".rotations WHERE id = $2)`,
    [a.name, line.rotationId],
  );
  if (Number(later[0]?.n ?? 0) > 0) return;
  const cur = await env.sampler.current(a);
  if (!cur) return; // provider unreachable now (another fault); the round-end checks cover it
  if (cur.rotationId !== line.rotationId)
    return env.violation(
      `${context}: account ${a.name} reported rotation ${line.rotationId} succeeded; the provider's current is from ${cur.rotationId ?? 'no rotation'}`,
    );
  const login = await loginSettled(env.target, cur);
  if (login !== 'ok')
    env.violation(
      `${context}: account ${a.name} reported rotation ${line.rotationId} succeeded; its credential (role ${cur.username}) does not log in (${login})`,
    );
}

async function loginSettled(target: LoginTarget, c: Credential): Promise<string> {
  let r = await tryLogin(target, c.username, c.password);
  for (let i = 0; i < 10 && r !== 'ok' && r !== 'refused'; i++) {
    await sleep(500);
    r = await tryLogin(target, c.username, c.password);
  }
  return r;
}

/** CONNECTION LIMIT reached: the server's "too many connections" after the password is proof. */
export async function connectionLimitFault(env: FaultEnv, a: ChaosAccount): Promise<void> {
  const held: pg.Client[] = [];
  const cur = await env.sampler.current(a);
  const limits: Array<[string, number]> = [];
  try {
    for (const role of a.roles) {
      let n = 0;
      if (cur && cur.username === role) {
        const c = new pg.Client({
          ...env.target,
          user: role,
          password: cur.password,
          application_name: 'chaos-app-session',
        });
        c.on('error', () => undefined);
        try {
          await c.connect();
          held.push(c);
          n = 1;
        } catch {
          // mid-rotation: the limit is then 0 sessions
        }
      }
      limits.push([role, n]);
    }
    await withSu(env, async (c) => {
      for (const [role, n] of limits) await c.query(`ALTER ROLE ${quoteIdent(role)} CONNECTION LIMIT ${n}`);
    });
    env.fault(
      'conn-limit',
      `account ${a.name}: ${a.roles.join(', ')} at their CONNECTION LIMIT (${held.length} session(s) held)`,
    );
    const out = await env.queued(['rotate', a.name, '--wait', '--json', '--reason', 'chaos-fault'], 90_000);
    const line = parseResults(out.stdout).lines[0];
    if (!line) return env.log(`conn-limit ${a.name}: no result (exit ${out.code})`);
    if (line.outcome === 'failed' && /too many connections/i.test(line.error?.message ?? '')) {
      env.violation(
        `conn-limit: account ${a.name}: the rotation failed on the connection limit instead of taking it as proof: ${line.error?.message}`,
      );
    }
    // Sessions a PostgreSQL restart (another fault) ended no longer fill the limit.
    const stillHeld = (
      await Promise.all(
        held.map((c) =>
          c.query('SELECT 1').then(
            () => true,
            () => false,
          ),
        ),
      )
    ).every(Boolean);
    if (
      line.outcome === 'succeeded' &&
      held.length > 0 &&
      stillHeld &&
      !line.resumed &&
      !(line.warnings ?? []).some((w) => /CONNECTION LIMIT|refused the session/.test(w))
    ) {
      env.violation(
        `conn-limit: account ${a.name}: rotated at its connection limit without saying so (warnings: ${JSON.stringify(line.warnings ?? [])})`,
      );
    }
    await withSu(env, async (c) => {
      for (const role of a.roles) await c.query(`ALTER ROLE ${quoteIdent(role)} CONNECTION LIMIT -1`);
    });
    await checkReportedSuccess(env, a, line, 'conn-limit');
  } finally {
    await withSu(env, async (c) => {
      for (const role of a.roles) await c.query(`ALTER ROLE ${quoteIdent(role)} CONNECTION LIMIT -1`);
    }).catch(() => undefined);
    for (const c of held) await c.end().catch(() => undefined);
  }
}

/** Put reject lines for the roles at the top of pg_hba.conf (or take them out) and reload. */
async function hba(env: FaultEnv, roles: string[], present: boolean): Promise<void> {
  const mine = roles.map((r) => `host all ${r} 127.0.0.1/32 reject`);
  const lines = readFileSync(env.hbaFile, 'utf8')
    .split('\n')
    .filter((l) => !mine.includes(l));
  writeFileSync(env.hbaFile, (present ? [...mine, ...lines] : lines).join('\n'));
  await withSu(env, (c) => c.query('SELECT pg_reload_conf()'));
  await sleep(300); // the postmaster rereads the file on SIGHUP
}

/**
 * pg_hba.conf rejects the role. `preflight`: the line is in place before the request, so
 * pre-flight must refuse with nothing changed. `between`: it lands between apply and verify
 * (the rotation pauses there), so the single-user rotation must restore the previous credential.
 */
export async function hbaRejectFault(env: FaultEnv, a: ChaosAccount, variant: 'preflight' | 'between'): Promise<void> {
  // `since` first: a rotation that changes pg_authid or the provider after it leaves an audit
  // event after it, so "nothing changed" is judged only when there is none.
  const since = await stateNow(env);
  const before = await rolpasswords(env, a.roles);
  const curBefore = await env.sampler.current(a);
  const running = await env.state(`SELECT 1 FROM "${env.schema}".rotations WHERE account = $1 AND status = 'running'`, [
    a.name,
  ]);
  try {
    let line: ResultLine | null;
    if (variant === 'preflight') {
      await hba(env, a.roles, true);
      env.fault('hba-reject', `account ${a.name}: pg_hba.conf rejects ${a.roles.join(', ')} before the request`);
      line = await rotateInline(env, a.name);
    } else {
      let settled = false;
      const rotation = rotateInline(env, a.name, { PGROTATE_FAILPOINT: `pause-after-apply:2500@${a.name}` }).finally(
        () => (settled = true),
      );
      // Wait for ALTER ROLE, then reject the role before verify.
      let applied = false;
      while (!settled) {
        if ((await rolpasswords(env, a.roles)) !== before) {
          applied = true;
          break;
        }
        await sleep(50);
      }
      if (applied) {
        await hba(env, a.roles, true);
        env.fault(
          'hba-reject',
          `account ${a.name}: pg_hba.conf rejects ${a.roles.join(', ')} between apply and verify`,
        );
      }
      line = await rotation;
      if (!applied)
        return env.log(
          `hba-reject (between) ${a.name}: the rotation never reached apply (${line?.outcome ?? 'no result'}: ${line?.error?.message ?? ''})`,
        );
    }
    await hba(env, a.roles, false);
    if (!line) return env.log(`hba-reject ${a.name}: no result`);
    const msg = line.error?.message ?? '';
    if (line.outcome === 'succeeded' && !line.resumed)
      env.violation(
        `hba-reject (${variant}): account ${a.name} reported rotated although pg_hba.conf rejected its login`,
      );
    if (line.outcome !== 'failed') return checkReportedSuccess(env, a, line, `hba-reject (${variant})`);
    if (/Nothing was changed/.test(msg)) {
      if (line.rotationId)
        env.violation(
          `hba-reject: account ${a.name} reported "nothing was changed" with a rotation ${line.rotationId}`,
        );
      const others = await activitySince(env, a.name, since, ['rotation.refused']);
      if (running.length === 0 && others.length === 0) {
        if ((await rolpasswords(env, a.roles)) !== before)
          env.violation(`hba-reject: account ${a.name} reported "nothing was changed" but pg_authid changed`);
        const cur = await env.sampler.current(a);
        if (cur && curBefore && cur.rotationId !== curBefore.rotationId)
          env.violation(
            `hba-reject: account ${a.name} reported "nothing was changed" but the provider's current changed`,
          );
      }
    }
    if (/previous credential was restored/.test(msg)) {
      const cur = await env.sampler.current(a);
      if (
        cur &&
        curBefore &&
        cur.password !== curBefore.password &&
        (
          await activitySince(env, a.name, since, [
            'rotation.refused',
            'rotation.started',
            'rotation.staged',
            'rotation.applied',
            'rotation.failed',
          ])
        ).length === 0 &&
        (await otherRotationsSince(env, a.name, since, line.rotationId)) === 0
      ) {
        env.violation(
          `hba-reject: account ${a.name} reported the previous credential restored, but the provider's current is another value`,
        );
      }
      if (cur && cur.password === curBefore?.password) {
        const login = await loginSettled(env.target, cur);
        // Another rotation of the account (a worker's) may have started after the restore and
        // changed the password before its promote: the audit trail, read after the login, says.
        const started = (await activitySince(env, a.name, since, [])).filter((k) => k === 'rotation.started').length;
        if (login !== 'ok' && started <= 1)
          env.violation(
            `hba-reject: account ${a.name} reported the previous credential restored, but it does not log in (${login})`,
          );
      }
    }
    const removed = /the new password was removed from inactive role "([^"]+)"/.exec(msg);
    if (removed) {
      // The reported clean-up must be what PostgreSQL shows, unless a later rotation of the
      // account has since given that role a password.
      const role = removed[1] as string;
      const later = await activitySince(env, a.name, since, [
        'rotation.refused',
        'rotation.started',
        'rotation.staged',
        'rotation.applied',
        'rotation.failed',
        'rotation.resumed',
      ]);
      const p = await rolpasswords(env, [role]);
      // Read after the role and the provider, so a rotation that began before them is seen here.
      const explained =
        later.includes('rotation.promoted') || (await otherRotationsSince(env, a.name, since, line.rotationId)) > 0;
      if (!explained && p !== `${role}=`)
        env.violation(
          `hba-reject: account ${a.name} reported the new password removed from ${role}, but the role has a password`,
        );
      const cur = await env.sampler.current(a);
      const explainedNow = explained || (await otherRotationsSince(env, a.name, since, line.rotationId)) > 0;
      if (!explainedNow && cur && cur.username === role)
        env.violation(
          `hba-reject: account ${a.name} reported ${role} inactive, but the provider's current is that role`,
        );
    }
    if (
      variant === 'between' &&
      a.strategy === 'single-user' &&
      curBefore &&
      !/previous credential was restored|Nothing was changed/.test(msg)
    ) {
      env.log(`hba-reject (between) ${a.name}: failed otherwise: ${msg}`);
    }
  } finally {
    await hba(env, a.roles, false).catch(() => undefined);
  }
}

/**
 * VALID UNTIL in the past on a single-user role: refused by pre-flight naming the expiry, with
 * nothing changed; or, when the account sets renewValidUntil, rotated with a new expiry.
 */
export async function expiredRoleFault(env: FaultEnv, a: ChaosAccount & { renewValidUntil?: boolean }): Promise<void> {
  const role = a.roles[0] as string;
  // `since` first: a rotation that changes pg_authid or the provider after it leaves an audit
  // event after it, so "nothing changed" is judged only when there is none.
  const since = await stateNow(env);
  const before = await rolpasswords(env, a.roles);
  const curBefore = await env.sampler.current(a);
  const running = await env.state(`SELECT 1 FROM "${env.schema}".rotations WHERE account = $1 AND status = 'running'`, [
    a.name,
  ]);
  const excluded = env.reader.exclude(a.name);
  try {
    await withSu(env, (c) => c.query(`ALTER ROLE ${quoteIdent(role)} VALID UNTIL '2000-01-01 00:00:00+00'`));
    env.fault(
      'valid-until-past',
      `account ${a.name}: role ${role} VALID UNTIL 2000-01-01${a.renewValidUntil ? ' (account sets renewValidUntil)' : ''}`,
    );
    const line = await rotateInline(env, a.name);
    if (!line) return env.log(`valid-until-past ${a.name}: no result`);
    const msg = line.error?.message ?? '';
    if (a.renewValidUntil) {
      if (line.outcome === 'failed' && /expired at/.test(msg))
        env.violation(`valid-until-past: account ${a.name} sets renewValidUntil but was refused as expired: ${msg}`);
      if (line.outcome === 'succeeded') {
        const until = await withSu(
          env,
          async (c) =>
            (await c.query<{ v: Date | null }>('SELECT rolvaliduntil AS v FROM pg_roles WHERE rolname = $1', [role]))
              .rows[0]?.v ?? null,
        );
        const later = await activitySince(env, a.name, since, []);
        if (
          (!until || until.getTime() < Date.now() + 86_400_000) &&
          later.filter((k) => k === 'rotation.succeeded').length <= 1
        ) {
          env.violation(
            `valid-until-past: account ${a.name} reported rotated with renewValidUntil, but VALID UNTIL is ${until?.toISOString() ?? 'unset'}`,
          );
        }
        await checkReportedSuccess(env, a, line, 'valid-until-past (renew)');
      }
      return;
    }
    if (line.outcome === 'succeeded' && !line.resumed)
      env.violation(`valid-until-past: account ${a.name} reported rotated although its role expired in 2000`);
    if (line.outcome === 'succeeded') return checkReportedSuccess(env, a, line, 'valid-until-past');
    if (line.outcome === 'failed' && line.error?.type === 'RoleExpiredError') {
      if (!/expired at 2000-01-01T00:00:00\.000Z/.test(msg))
        env.violation(`valid-until-past: account ${a.name} refused without naming the expiry: ${msg}`);
      const others = await activitySince(env, a.name, since, ['rotation.refused']);
      if (running.length === 0 && others.length === 0) {
        if ((await rolpasswords(env, a.roles)) !== before)
          env.violation(`valid-until-past: account ${a.name} refused as expired, but pg_authid changed`);
        const cur = await env.sampler.current(a);
        if (cur && curBefore && cur.rotationId !== curBefore.rotationId)
          env.violation(`valid-until-past: account ${a.name} refused as expired, but the provider's current changed`);
      }
    }
  } finally {
    // Heal: an expiry the rotation did not renew goes back to none.
    await withSu(env, (c) =>
      c.query(`ALTER ROLE ${quoteIdent(role)} VALID UNTIL 'infinity'`).then(() => undefined),
    ).catch(() => undefined);
    excluded.lift();
  }
}

/**
 * A scheduled rotation and `offboard PRINCIPAL --terminate-sessions` on the same account at
 * once, with an application session open on the role. Whatever rotation satisfies the offboard,
 * what it reports must have happened: the session gone when sessions are reported ended, the
 * password the person saw refused, the new one current and logging in.
 */
export async function offboardRaceFault(env: FaultEnv, a: ChaosAccount & { principal: string }): Promise<void> {
  const cur = await env.sampler.current(a);
  if (!cur) return env.log(`offboard-race ${a.name}: no current value yet`);
  let victim: pg.Client | null = null;
  let victimPid = 0;
  for (let i = 0; i < 10 && !victim; i++) {
    const c = new pg.Client({
      ...env.target,
      user: cur.username,
      password: cur.password,
      application_name: 'chaos-app-session',
    });
    c.on('error', () => undefined);
    try {
      await c.connect();
      victimPid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? 0;
      victim = c;
    } catch {
      await c.end().catch(() => undefined);
      await sleep(300);
    }
  }
  if (!victim) return env.log(`offboard-race ${a.name}: could not open an application session`);
  try {
    const requested = await stateNow(env);
    // The scheduled rotation: due now, claimed by the next tick (every second).
    await env.state(`UPDATE "${env.schema}".accounts SET next_due_at = now(), queued_at = NULL WHERE name = $1`, [
      a.name,
    ]);
    // A PostgreSQL restart (another fault) ends the session without pgrotate: then no session
    // has to be reported ended. Alive now, and the server not restarted by the end, it must be.
    const serverStart = await postmasterStart(env);
    const aliveAtRequest = await victim.query('SELECT 1').then(
      () => true,
      () => false,
    );
    env.fault(
      'offboard-race',
      `account ${a.name}: scheduled rotation and offboard ${a.principal} --terminate-sessions at once (session pid ${victimPid} open)`,
    );
    const out = await env.queued(['offboard', a.principal, '--terminate-sessions', '--json'], 120_000);
    const { lines, doc } = parseResults(out.stdout);
    const line = lines.find((l) => l.account === a.name);
    if (!doc || !line) return env.log(`offboard-race ${a.name}: no result (exit ${out.code})`);
    const victimGone = async () => {
      for (let i = 0; i < 10; i++) {
        const rows = await withSu(
          env,
          async (c) => (await c.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [victimPid])).rows,
        );
        if (rows.length === 0) return true;
        await sleep(100);
      }
      return false;
    };
    const reportedEnded =
      (line.sessionsEnded ?? 0) > 0 || (typeof doc.sessionsEnded === 'number' && doc.sessionsEnded > 0);
    if (reportedEnded && !(await victimGone()))
      env.violation(
        `offboard-race: account ${a.name}: ${line.sessionsEnded} session(s) reported ended, but the application session (pid ${victimPid}) is still open`,
      );
    const rotated = Array.isArray(doc.rotated) && (doc.rotated as string[]).includes(a.name);
    if ((out.code === 0) !== rotated)
      env.violation(
        `offboard-race: account ${a.name}: exit code ${out.code} but the account is ${rotated ? '' : 'not '}listed as rotated`,
      );
    if (!rotated) return env.log(`offboard-race ${a.name}: offboarding failed: ${line.error?.message ?? line.outcome}`);
    if (!['succeeded', 'skipped'].includes(line.outcome))
      env.violation(`offboard-race: account ${a.name} listed as rotated with outcome ${line.outcome}`);
    if (!line.rotationId)
      return env.violation(`offboard-race: account ${a.name} listed as rotated without a rotation id`);
    const rec = await env.state<{ status: string; started: Date; terminate: boolean; sessions: number | null }>(
      `SELECT status, started_at AS started, terminate_sessions AS terminate, sessions_ended AS sessions FROM "${env.schema}".rotations WHERE id = $1`,
      [line.rotationId],
    );
    const r = rec[0];
    if (!r || r.status !== 'succeeded')
      return env.violation(
        `offboard-race: account ${a.name}: rotation ${line.rotationId} reported, the state database says ${r?.status ?? 'no such rotation'}`,
      );
    if (r.started.getTime() < requested.getTime())
      env.violation(
        `offboard-race: account ${a.name}: satisfied by rotation ${line.rotationId}, which started before the offboarding was requested`,
      );
    if (!r.terminate || r.sessions === null)
      env.violation(
        `offboard-race: account ${a.name}: satisfied by rotation ${line.rotationId}, which did not end sessions`,
      );
    const restarted = (await postmasterStart(env)) !== serverStart;
    if (!reportedEnded && aliveAtRequest && !restarted) {
      env.violation(
        `offboard-race: account ${a.name}: rotated with --terminate-sessions, but the open application session (pid ${victimPid}) was not reported ended`,
      );
    }
    if (!(await victimGone()))
      env.violation(
        `offboard-race: account ${a.name}: the application session (pid ${victimPid}) survived the offboarding`,
      );
    // The password the offboarded person saw must be dead (alternating: its role expired at once).
    const old = await loginSettled(env.target, cur);
    if (old !== 'refused')
      env.violation(
        `offboard-race: account ${a.name}: after offboarding, the password the person saw still logs in as ${cur.username} (${old})`,
      );
    await checkReportedSuccess(env, a, { ...line, outcome: 'succeeded' }, 'offboard-race');
  } finally {
    await victim.end().catch(() => undefined);
  }
}

/**
 * A permanent error (the role made NOLOGIN) whose recording is cut short by SIGKILL: the workers
 * of this round carry the `recording-failure` failpoint for the account, which kills the process
 * after the account is marked failed and before the audit event. The job must still end (the
 * lock lapses, another worker records the failure), be reported failed, and nothing may rotate.
 */
export async function killWhileRecordingFailureFault(
  env: FaultEnv,
  a: ChaosAccount,
  fired: () => number,
): Promise<void> {
  const since = await stateNow(env);
  const before = await rolpasswords(env, a.roles);
  const curBefore = await env.sampler.current(a);
  const firedBefore = fired();
  try {
    await withSu(env, async (c) => {
      for (const role of a.roles) await c.query(`ALTER ROLE ${quoteIdent(role)} NOLOGIN`);
    });
    env.log(`account ${a.name}: ${a.roles.join(', ')} NOLOGIN (a permanent error); the workers die while recording it`);
    const started = Date.now();
    const out = await env.queued(['rotate', a.name, '--wait', '--json', '--reason', 'chaos-fault'], 120_000);
    const line = parseResults(out.stdout).lines[0];
    if (fired() === firedBefore)
      return env.log(
        `kill-recording-failure ${a.name}: the failpoint did not fire (${line?.outcome ?? 'no result'}: ${line?.error?.message ?? ''})`,
      );
    if (!line) {
      // The waiting CLI itself lost its connection (a PostgreSQL restart under a PostgreSQL
      // queue): the job must still end, with the failure recorded by whichever worker took it.
      env.log(
        `kill-recording-failure ${a.name}: rotate --wait printed no result (exit ${out.code}, ${Math.round((Date.now() - started) / 1000)} s); waiting for the recorded failure`,
      );
      for (let i = 0; i < 120 && !(await activitySince(env, a.name, since, [])).includes('rotation.gave-up'); i++)
        await sleep(500);
      if (!(await activitySince(env, a.name, since, [])).includes('rotation.gave-up'))
        env.violation(
          `kill-recording-failure: account ${a.name}: the failure was never recorded after the worker was killed`,
        );
      return;
    }
    if (line.outcome === 'succeeded')
      env.violation(`kill-recording-failure: account ${a.name} reported rotated although its roles were NOLOGIN`);
    if (line.outcome === 'failed' && /did not finish within/.test(line.error?.message ?? ''))
      env.violation(`kill-recording-failure: account ${a.name}: the job never finished after the worker was killed`);
    const rows = await env.state<{ last_status: string | null }>(
      `SELECT last_status FROM "${env.schema}".accounts WHERE name = $1`,
      [a.name],
    );
    const events = await activitySince(env, a.name, since, []);
    if (line.outcome === 'failed') {
      if (!events.includes('rotation.gave-up'))
        env.violation(
          `kill-recording-failure: account ${a.name}: reported failed, but no rotation.gave-up audit event was recorded`,
        );
      if (rows[0]?.last_status !== 'failed' && !events.includes('rotation.succeeded'))
        env.violation(
          `kill-recording-failure: account ${a.name}: reported failed, but status says ${rows[0]?.last_status}`,
        );
    }
    if (!events.some((k) => k === 'rotation.started' || k === 'rotation.resumed')) {
      if ((await rolpasswords(env, a.roles)) !== before)
        env.violation(`kill-recording-failure: account ${a.name}: no rotation ran, but pg_authid changed`);
      const cur = await env.sampler.current(a);
      if (cur && curBefore && cur.rotationId !== curBefore.rotationId)
        env.violation(`kill-recording-failure: account ${a.name}: no rotation ran, but the provider's current changed`);
    }
  } finally {
    await withSu(env, async (c) => {
      for (const role of a.roles) await c.query(`ALTER ROLE ${quoteIdent(role)} LOGIN`);
    }).catch(() => undefined);
  }
}

/**
 * Undo whatever an account fault may have left behind (one whose own clean-up met a restart):
 * reject lines, NOLOGIN, connection limits, an expiry in the past on a single-user role.
 */
export async function healAccounts(env: FaultEnv, accounts: ChaosAccount[]): Promise<void> {
  await hba(
    env,
    accounts.flatMap((a) => a.roles),
    false,
  );
  await withSu(env, async (c) => {
    for (const a of accounts) {
      for (const role of a.roles) await c.query(`ALTER ROLE ${quoteIdent(role)} LOGIN CONNECTION LIMIT -1`);
      if (a.strategy === 'single-user') {
        const role = a.roles[0] as string;
        const past = (
          await c.query<{ past: boolean }>('SELECT rolvaliduntil < now() AS past FROM pg_roles WHERE rolname = $1', [
            role,
          ])
        ).rows[0]?.past;
        if (past) await c.query(`ALTER ROLE ${quoteIdent(role)} VALID UNTIL 'infinity'`);
      }
    }
  });
}
