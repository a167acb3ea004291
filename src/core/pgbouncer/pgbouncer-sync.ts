import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import type { ClientBase } from 'pg';
import type { PgbouncerConfig } from '../config/target-config-schema.js';
import { PgbouncerError, messageOf } from '../errors.js';
import type { Redactor } from '../logging/redactor.js';
import type { LoginResult } from '../pg/login-result.js';
import type { TargetConnector } from '../pg/target-connector.js';
import { rewriteAuthFile } from './auth-file.js';
import { pgbouncerName, withPgbouncerAdmin, type PgbouncerConsole } from './pgbouncer-admin.js';

// Keeping the PgBouncer instances of a target in step with a rotation: pre-flight reaches each
// one, apply writes the role's verifier into each auth_file and RELOADs, verify logs in through
// each, a rollback puts the line back, and an expired previous login is retired from each.

/** The admin console of `instance`, with the target's TLS settings. */
export function withConsole<T>(
  targets: TargetConnector,
  redactor: Redactor,
  targetName: string,
  instance: PgbouncerConfig,
  fn: (c: PgbouncerConsole) => Promise<T>,
): Promise<T> {
  const e = targets.endpoint(targetName);
  const opts = { sslmode: e.sslmode, caFile: e.caFile, connectTimeoutMs: e.connectTimeoutMs ?? 10_000, redactor };
  return withPgbouncerAdmin(targetName, instance, opts, fn);
}

/**
 * Before anything changes: every instance's auth_file (if any) can be read and replaced, and its
 * admin console answers. All instances are checked; the first problem is thrown.
 */
export async function checkPgbouncers(targets: TargetConnector, redactor: Redactor, targetName: string): Promise<void> {
  for (const instance of targets.pgbouncers(targetName)) {
    const name = pgbouncerName(targetName, instance);
    if (instance.authFile !== undefined) {
      try {
        await access(instance.authFile, constants.R_OK | constants.W_OK);
      } catch (err) {
        throw new PgbouncerError(
          `${name}: auth_file ${instance.authFile} cannot be read and written: ${messageOf(err)}`,
          { target: targetName, cause: err },
        );
      }
    }
    await withConsole(targets, redactor, targetName, instance, (c) => c.config());
  }
}

/**
 * Put `verifier` (null: no line) as `role`'s entry in every auth_file of the target, then RELOAD
 * each instance. Idempotent, so a resumed apply or rollback simply redoes it. `afterWrite` runs
 * between a file's write and its RELOAD (the crash tests' failpoint).
 */
export async function publishVerifier(
  targets: TargetConnector,
  redactor: Redactor,
  targetName: string,
  role: string,
  verifier: string | null,
  afterWrite?: () => Promise<void>,
): Promise<void> {
  for (const instance of targets.pgbouncers(targetName)) {
    if (instance.authFile === undefined) continue;
    try {
      rewriteAuthFile(instance.authFile, role, verifier);
    } catch (err) {
      throw new PgbouncerError(
        `${pgbouncerName(targetName, instance)}: cannot rewrite auth_file ${instance.authFile}: ${messageOf(err)}`,
        { target: targetName, cause: err },
      );
    }
    await afterWrite?.();
    // Reloaded even when the file was already as asked: a rewrite whose RELOAD was cut short (a
    // crash) left it so.
    await withConsole(targets, redactor, targetName, instance, (c) => c.reload());
  }
}

/** Log in as `role` through every PgBouncer of the target; the first refusal, with its instance named. */
export async function loginThroughPgbouncers(
  targets: TargetConnector,
  targetName: string,
  role: string,
  password: string,
): Promise<{ instance: string; result: LoginResult } | null> {
  for (const instance of targets.pgbouncers(targetName)) {
    const via = { host: instance.host, port: instance.port, database: instance.database };
    const result = await targets.tryLogin(targetName, role, password, 'pgrotate-verify', via);
    if (!result.ok) return { instance: pgbouncerName(targetName, instance), result };
  }
  return null;
}

/**
 * The previous login of an alternating account has expired: it must stop working through
 * PgBouncer too. Its auth_file line goes (RELOAD), and the server connections PgBouncer pools
 * for it are closed: their backends are ended on the target with `admin` (found by SHOW SERVERS,
 * so only PgBouncer's connections of that role are touched, not its direct sessions); without
 * the privilege to end them, RECONNECT closes each instance's server connections once released.
 * Returns the number of pooled connections closed. Idempotent; cheap when nothing is left.
 */
export async function retirePgbouncerLogin(
  targets: TargetConnector,
  redactor: Redactor,
  targetName: string,
  role: string,
  admin: ClientBase,
): Promise<number> {
  await publishVerifier(targets, redactor, targetName, role, null);
  let closed = 0;
  for (const instance of targets.pgbouncers(targetName)) {
    await withConsole(targets, redactor, targetName, instance, async (c) => {
      const pids = (await c.servers()).filter((s) => s.user === role).map((s) => s.remotePid);
      if (pids.length === 0) return;
      try {
        const res = await admin.query<{ n: string }>(
          'SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE usename = $1 AND pid = ANY($2::int[])',
          [role, pids],
        );
        closed += Number(res.rows[0]?.n ?? 0);
      } catch {
        await c.reconnect();
        closed += pids.length;
      }
    });
  }
  return closed;
}
