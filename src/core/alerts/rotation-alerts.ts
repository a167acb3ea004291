import { isPermanentError } from '../errors.js';
import type { RotationResult } from '../rotation/rotation-engine.js';
import type { RotationObservers } from '../rotation/rotation-observers.js';
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
