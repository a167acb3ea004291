import { z } from 'zod';
import type { App } from '../../core/app.js';
import type { ApiAction } from '../../core/config/config-schema.js';
import type { RotationDispatch } from '../../services/dispatch/rotation-dispatch.js';
import { settleWithin } from '../../core/concurrency/settle-within.js';
import { UnknownPrincipalError, messageOf } from '../../core/errors.js';
import type { JoinedOffboard, OffboardJoins } from '../../services/offboard/offboard-joins.js';
import type { OffboardSummary } from '../../services/offboard/offboard-principal.js';
import type { RunResult } from '../../core/rotation/run-result.js';
import { accountStatuses, statusJson } from '../../services/status/account-status.js';
import { HttpError, readJsonBody } from './request-body.js';
import type { IncomingMessage } from 'node:http';

// The versioned API: status, on-demand rotation, offboarding. Each route names the action a
// token needs; the server checks it before the handler runs. Handlers return a status and a
// JSON body; they never see the token, only its name.

export interface ApiResponse {
  status: number;
  body: unknown;
}

export interface ApiContext {
  app: App;
  /** Requested rotations: queued when the config has a queue, else run in this process. */
  rotations: RotationDispatch;
  /** Offboardings answered with 202 whose rotations are still being awaited. */
  background: Set<Promise<unknown>>;
  /** Offboardings running in this process, which identical requests join. */
  offboards: OffboardJoins;
  /** Tests shorten OFFBOARD_RESPONSE_WAIT_MS. */
  offboardResponseWaitMs?: number;
}

export interface ApiRoute {
  method: 'GET' | 'POST';
  pattern: RegExp;
  action: ApiAction;
  handle(ctx: ApiContext, req: IncomingMessage, params: string[], requester: string): Promise<ApiResponse>;
}

const rotateBody = z.strictObject({
  reason: z.string().max(500).optional(),
  terminateSessions: z.boolean().default(false),
});

const offboardBody = z.strictObject({
  // An empty principal is answered like an unknown one (404 naming the problem), as on the CLI.
  principal: z.string().max(200),
  terminateSessions: z.boolean().default(false),
  /** Accept a principal no account or group names (answer 200 with nothing rotated) instead of 404. */
  allowNone: z.boolean().default(false),
});

/** How long `POST /v1/offboard` without a queue waits for the outcome before answering 202. */
export const OFFBOARD_RESPONSE_WAIT_MS = 50_000;

/**
 * HTTP status for an offboarding's outcome: 200 when every account was rotated (by this request
 * or a rotation that satisfied it); 409 when the only problem is accounts another rotation still
 * held at the end of the wait; 502 when a rotation failed (the database or the secret store did
 * not let it finish; the body says which account and why). 500 stays for pgrotate's own errors.
 */
export function offboardStatus(summary: OffboardSummary): number {
  if (summary.failed.length === 0) return 200;
  const failed = new Set(summary.failed);
  const busyOnly = summary.results.filter((r) => failed.has(r.account)).every((r) => r.outcome === 'busy');
  return busyOnly ? 409 : 502;
}

/** HTTP status for one requested rotation's outcome. */
function statusOf(result: RunResult): number {
  if (result.outcome === 'succeeded' || result.outcome === 'skipped') return 200;
  if (result.outcome === 'busy') return 409;
  return 500;
}

/**
 * Watch an offboarding answered with 202 to its end, logging the outcome. Only the request that
 * started it watches; those that joined it share that watch.
 */
function watchInBackground(ctx: ApiContext, started: JoinedOffboard): void {
  if (started.joined) return;
  const waiting = started.done
    .then((s) =>
      ctx.app.log.info(
        { principal: s.principal, rotated: s.rotated.length, failed: s.failed.length },
        'offboarding finished',
      ),
    )
    .catch((err: unknown) =>
      ctx.app.log.error({ error: ctx.app.redactor.scrub(messageOf(err)) }, 'offboarding wait failed'),
    )
    .finally(() => ctx.background.delete(waiting));
  ctx.background.add(waiting);
}

export const API_ROUTES: ApiRoute[] = [
  {
    method: 'GET',
    pattern: /^\/v1\/audit\/([^/]+)$/,
    action: 'read',
    async handle(ctx, _req, params) {
      const target = decodeURIComponent(params[0] as string);
      if (!(target in ctx.app.config.targets)) throw new HttpError(404, `unknown target "${target}"`);
      const run = await ctx.app.auditRuns.latest(target);
      if (!run)
        throw new HttpError(
          404,
          `target "${target}" has no stored audit yet (run pgrotate audit ${target} --since-last, or schedule audit: { every })`,
        );
      return {
        status: 200,
        body: { runId: run.runId, at: run.at.toISOString(), actor: run.actor, report: run.report },
      };
    },
  },
  {
    method: 'GET',
    pattern: /^\/v1\/accounts$/,
    action: 'read',
    async handle(ctx) {
      return { status: 200, body: statusJson(await accountStatuses(ctx.app)) };
    },
  },
  {
    method: 'POST',
    pattern: /^\/v1\/accounts\/([^/]+)\/rotate$/,
    action: 'rotate',
    async handle(ctx, req, params, requester) {
      const name = decodeURIComponent(params[0] as string);
      const body = await readJsonBody(req, rotateBody);
      const account = ctx.app.config.accounts.find((a) => a.name === name);
      if (!account) throw new HttpError(404, `unknown account "${name}"`);
      await ctx.app.state.audit({
        account: account.name,
        kind: 'rotation.requested',
        actor: requester,
        detail: { via: 'api', reason: body.reason ?? null, terminateSessions: body.terminateSessions },
      });
      const request = {
        kind: 'on-demand' as const,
        reason: body.reason ?? null,
        requestedBy: requester,
        terminateSessions: body.terminateSessions,
      };
      const dispatched = await ctx.rotations.request([account.name], request, { wait: null });
      if (dispatched.jobIds) return { status: 202, body: { account: account.name, queued: dispatched.jobIds[0] } };
      const [result] = await (dispatched.results as Promise<RunResult[]>);
      const r = result as RunResult;
      return { status: statusOf(r), body: { result: r } };
    },
  },
  {
    method: 'POST',
    pattern: /^\/v1\/offboard$/,
    action: 'offboard',
    async handle(ctx, req, _params, requester) {
      const body = await readJsonBody(req, offboardBody);
      const started = await ctx.offboards
        .start(ctx.app, ctx.rotations, {
          principal: body.principal,
          terminateSessions: body.terminateSessions,
          actor: requester,
          timeoutMs: 60 * 60_000,
          allowNone: body.allowNone,
        })
        .catch((err: unknown) => {
          if (err instanceof UnknownPrincipalError) throw new HttpError(404, err.message);
          throw err;
        });
      if (started.jobIds) {
        // The workers rotate; the outcome is recorded (and alerted) when they are done.
        watchInBackground(ctx, started);
        return {
          status: 202,
          body: {
            principal: body.principal,
            accounts: started.accounts,
            queued: started.jobIds,
            joined: started.joined,
          },
        };
      }
      const finished = await settleWithin(started.done, ctx.offboardResponseWaitMs ?? OFFBOARD_RESPONSE_WAIT_MS);
      if (!finished) {
        // Still rotating here (or waiting for another process's rotation of the same accounts):
        // answer before the caller's HTTP timeout; the outcome is audited and alerted as queued ones are.
        watchInBackground(ctx, started);
        return {
          status: 202,
          body: {
            principal: body.principal,
            accounts: started.accounts,
            running: true,
            joined: started.joined,
            poll: '/v1/accounts',
          },
        };
      }
      // `done` never rejects (startOffboard), so a settled one has its summary.
      const summary = await started.done;
      return { status: offboardStatus(summary), body: { ...summary, joined: started.joined } };
    },
  },
];
