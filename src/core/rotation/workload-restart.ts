import type { AccountConfig, WorkloadRef } from '../config/config-schema.js';

// Rollout restarts after a promoted rotation: the pods read the new credential when they start,
// so pgrotate changes their pod template (an annotation, as `kubectl rollout restart` does) and
// the workload controller replaces them. A restart that fails is reported, never undone into
// the rotation: the new credential is already the current one.

/** What happened to one workload. */
export interface RestartOutcome {
  workload: WorkloadRef;
  /** The pod template was patched. */
  restarted: boolean;
  /** Why not (a missing workload, a refused permission, a timeout), redacted; null when restarted. */
  problem: string | null;
}

/** Patches the workloads' pod templates (src/app wires the Kubernetes API one). */
export interface WorkloadRestarter {
  /** Restart each workload; resolves one outcome per workload, in order, and never rejects. */
  restart(workloads: readonly WorkloadRef[], stamp: { rotationId: string; at: Date }): Promise<RestartOutcome[]>;
  close(): Promise<void>;
}

/** The workloads an account restarts: its own list, else the defaults'. */
export function restartListOf(account: AccountConfig, defaults: readonly WorkloadRef[] | undefined): WorkloadRef[] {
  return [...(account.restart ?? defaults ?? [])];
}

/** "Deployment apps/billing-api": how results, logs and events name a workload. */
export function workloadLabel(w: WorkloadRef): string {
  return `${w.kind} ${w.namespace}/${w.name}`;
}
