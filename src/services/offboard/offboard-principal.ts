import type { App } from '../../core/app.js';
import type { RotationDispatch } from '../dispatch/rotation-dispatch.js';
import { UnknownPrincipalError, messageOf } from '../../core/errors.js';
import { failedResult, type RunResult } from '../../core/rotation/run-result.js';
import { accountsExposedTo, isNamedPrincipal, principalNames } from './affected-accounts.js';
import { settleBusy } from './busy-accounts.js';

// Offboarding, shared by `pgrotate offboard` and `POST /v1/offboard`: audit the request, rotate
// every account the principal could have seen (through the queue when one is configured, else
// here), then audit and alert the outcome.

export interface OffboardRequest {
  principal: string;
  terminateSessions: boolean;
  /** Who asked: `cli:<user>`, `api:<token name>`. */
  actor: string;
  /** How long to wait for queued rotations. */
  timeoutMs: number;
  progress?: (done: number, total: number) => void;
  /** Accept a principal nobody names (0 accounts) instead of refusing it as a likely typo. */
  allowNone?: boolean;
}

export interface OffboardSummary {
  principal: string;
  rotated: string[];
  failed: string[];
  sessionsEnded: number | null;
  results: RunResult[];
}

export interface StartedOffboard {
  /** The affected accounts. */
  accounts: string[];
  /** Queue job ids when the rotations went to the workers. */
  jobIds: string[] | null;
  /** Settles when every rotation finished (or the wait timed out); never rejects. */
  done: Promise<OffboardSummary>;
}

/** Audit an offboarding request (`joinedRunning`: it joined one in progress); returns the affected accounts. */
export async function auditOffboardRequested(app: App, req: OffboardRequest, joinedRunning = false): Promise<string[]> {
  const affected = accountsExposedTo(app.config, req.principal).map((a) => a.name);
  await app.state.audit({
    kind: 'offboard.requested',
    actor: req.actor,
    detail: {
      principal: req.principal,
      via: principalNames(app.config, req.principal),
      accounts: affected,
      terminateSessions: req.terminateSessions,
      ...(joinedRunning ? { joinedRunning: true } : {}),
    },
  });
  return affected;
}

/**
 * Record the request and start the rotations through `rotations`; `done` finishes the record and
 * sends the alert. Close `rotations` after `done` settles.
 */
export async function startOffboard(
  app: App,
  rotations: RotationDispatch,
  req: OffboardRequest,
  joins: JoinHooks = {},
): Promise<StartedOffboard> {
  checkPrincipal(app, req);
  const affected = await auditOffboardRequested(app, req);
  // Taken once: a rotation tried again after waiting for a busy account is compared with it.
  const requestedAt = await app.state.now();
  const deadline = Date.now() + req.timeoutMs;
  const job = {
    kind: 'offboard' as const,
    reason: `offboarding ${req.principal}`,
    requestedBy: req.actor,
    terminateSessions: req.terminateSessions,
    requestedAt,
  };
  let jobIds: string[] | null = null;
  let running: Promise<RunResult[]>;
  if (affected.length === 0) {
    running = Promise.resolve([]);
  } else {
    const dispatched = await rotations.request(affected, job, {
      wait: { timeoutMs: req.timeoutMs },
      progress: req.progress,
    });
    jobIds = dispatched.jobIds;
    running = dispatched.results ?? Promise.resolve([]);
    // Run here: an account busy with another rotation is waited for, not failed (busy-accounts.ts).
    // (Queued jobs retry a busy account themselves.)
    if (!jobIds) {
      const retry = async (accounts: string[]) =>
        (await rotations.request(accounts, job, { wait: null })).results ?? Promise.resolve([]);
      running = running.then((results) => settleBusy(app, results, deadline, retry));
    }
  }
  const done = running
    .catch((err: unknown) => affected.map((a) => failedResult(a, app.redactor.scrub(messageOf(err)))))
    .then((results) => {
      joins.onRotated?.();
      return finishOffboard(app, req, results, joins.joinedBy ?? []);
    });
  return { accounts: affected, jobIds, done };
}

/** How an offboarding that other requests may join (offboard-joins.ts) is told about them. */
export interface JoinHooks {
  /** Actors of the requests that joined it so far (read when it finishes). */
  joinedBy?: string[];
  /** Called once its rotations are done, before the outcome is recorded: no request joins after. */
  onRotated?: () => void;
}

/** Refuse a blank principal, and one nobody names unless `allowNone`, before anything is recorded. */
export function checkPrincipal(app: App, req: Pick<OffboardRequest, 'principal' | 'allowNone'>): void {
  // A typo that reports "0 rotated" would leave the person's access in place unnoticed.
  if (req.principal.trim() === '' || (!req.allowNone && !isNamedPrincipal(app.config, req.principal))) {
    throw new UnknownPrincipalError(req.principal);
  }
}

async function finishOffboard(
  app: App,
  req: OffboardRequest,
  results: RunResult[],
  joinedBy: string[],
): Promise<OffboardSummary> {
  // Skipped means a rotation that started after the request already did all it asked for
  // (the runner checks sessions and expiry too). Anything short of that is a failure.
  const done = (r: RunResult) =>
    (r.outcome === 'succeeded' || r.outcome === 'skipped') && (!req.terminateSessions || r.sessionsEnded !== null);
  const rotated = results.filter(done).map((r) => r.account);
  const failed = results.filter((r) => !done(r)).map((r) => r.account);
  const sessionsEnded = req.terminateSessions ? results.reduce((n, r) => n + (r.sessionsEnded ?? 0), 0) : null;
  const summary: OffboardSummary = { principal: req.principal, rotated, failed, sessionsEnded, results };
  try {
    await app.state.audit({
      kind: 'offboard.completed',
      actor: req.actor,
      detail: { principal: req.principal, rotated, failed, sessionsEnded, joinedBy },
    });
  } catch (err) {
    app.log.error(
      { principal: req.principal, error: app.redactor.scrub(messageOf(err)) },
      'could not record the end of an offboarding',
    );
  }
  app.alerts.emit({
    event: 'offboard.completed',
    account: null,
    target: null,
    message: `offboarding ${req.principal}: ${rotated.length} account(s) rotated, ${failed.length} failed${failed.length ? ` (${failed.join(', ')})` : ''}`,
    detail: { principal: req.principal, requestedBy: req.actor, joinedBy, rotated, failed, sessionsEnded },
    at: new Date(),
  });
  return summary;
}
