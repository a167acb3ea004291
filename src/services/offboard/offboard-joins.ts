import type { App } from '../../core/app.js';
import type { RotationDispatch } from '../dispatch/rotation-dispatch.js';
import {
  auditOffboardRequested,
  checkPrincipal,
  startOffboard,
  type OffboardRequest,
  type StartedOffboard,
} from './offboard-principal.js';

// One process's offboardings by principal (the HTTP API's). An HR system that sends the same
// request twice, or retries one still running, joins the offboarding in progress instead of
// racing it for the accounts' fences: it gets the same report, naming the same rotations. That
// is exactly what happened for it too: every rotation of that offboarding started after the
// first request for the same person, so it created no credential the person could have seen.
// A request that asks for more (ending sessions when the running one does not) is not joined;
// it runs on its own, waiting for the accounts the other holds (busy-accounts.ts).

interface Running {
  terminateSessions: boolean;
  joinedBy: string[];
  started: Promise<StartedOffboard>;
}

/** A started offboarding, and whether this request joined one already running. */
export type JoinedOffboard = StartedOffboard & { joined: boolean };

/** Offboardings in progress in this process, joined by identical requests. */
export class OffboardJoins {
  private readonly running = new Map<string, Running>();

  /** Start an offboarding for `req`, or join the one running for the same principal that covers it. */
  async start(app: App, rotations: RotationDispatch, req: OffboardRequest): Promise<JoinedOffboard> {
    checkPrincipal(app, req);
    const current = this.running.get(req.principal);
    if (current && (current.terminateSessions || !req.terminateSessions)) {
      current.joinedBy.push(req.actor);
      await auditOffboardRequested(app, req, true);
      return { ...(await current.started), joined: true };
    }
    const joinedBy: string[] = [];
    // Called only after startOffboard's first wait, when `entry` below is set.
    const leave = () => {
      if (this.running.get(req.principal) === entry) this.running.delete(req.principal);
    };
    // Registered before the first wait, so a request arriving a moment later finds it.
    const started = startOffboard(app, rotations, req, { joinedBy, onRotated: leave });
    const entry: Running = { terminateSessions: req.terminateSessions, joinedBy, started };
    this.running.set(req.principal, entry);
    try {
      return { ...(await started), joined: false };
    } catch (err) {
      leave();
      throw err;
    }
  }
}
