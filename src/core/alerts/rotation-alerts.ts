import { isPermanentError } from '../errors.js';
import type { RotationResult } from '../rotation/rotation-engine.js';
import type { RotationObservers } from '../rotation/rotation-observers.js';
import { workloadLabel } from '../rotation/workload-restart.js';
import type { AlertDispatcher } from './alert-dispatcher.js';

/** Send a `rotation.failed` alert for every failed rotation the process runs. */
export function alertOnRotationFailures(observers: RotationObservers, alerts: AlertDispatcher): () => void {
  return observers.add((result: RotationResult) => {
    if (result.outcome !== 'failed' || !alerts.enabled) return;
    alerts.emit({
      event: 'rotation.failed',
      account: result.account,
      target: result.target,
      message: result.error?.message ?? `account ${result.account}: rotation failed`,
      detail: {
        rotationId: result.rotationId,
        role: result.role,
        errorType: result.error?.name ?? null,
        resumable: result.rotationId !== null,
        // Retrying will not help: a person has to act (a GRANT, a missing role, a policy).
        permanent: isPermanentError(result.error),
      },
      at: new Date(),
      rotationId: result.rotationId,
    });
  });
}

/** Send a `workload.restart-failed` alert for every rotation whose workloads could not all be restarted. */
export function alertOnRestartFailures(observers: RotationObservers, alerts: AlertDispatcher): () => void {
  return observers.add((result: RotationResult) => {
    const failed = result.restarts.filter((o) => !o.restarted);
    if (failed.length === 0 || !alerts.enabled) return;
    alerts.emit({
      event: 'workload.restart-failed',
      account: result.account,
      target: result.target,
      message:
        `account ${result.account}: rotated, but ${failed.map((o) => workloadLabel(o.workload)).join(', ')} ` +
        `could not be restarted; its pods keep the credential they started with`,
      detail: {
        rotationId: result.rotationId,
        role: result.role,
        workloads: failed.map((o) => ({ ...o.workload, problem: o.problem })),
      },
      at: new Date(),
    });
  });
}
