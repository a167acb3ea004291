import { ApiException, KubeConfig, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import type { KubernetesApiConfig, WorkloadRef } from '../../src/core/config/config-schema.js';
import { messageOf } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logging/logger.js';
import type { Redactor } from '../../src/core/logging/redactor.js';
import {
  workloadLabel,
  type RestartOutcome,
  type WorkloadRestarter,
} from '../../src/core/rotation/workload-restart.js';

// Rollout restarts through the Kubernetes API: a merge patch of the pod template's annotations,
// the change `kubectl rollout restart` makes; the workload's controller then replaces its pods,
// which read the new credential as they start. Only annotations are sent: never a secret value.

/** The annotation holding when pgrotate restarted the workload (what the controller sees change). */
export const ROTATED_AT_ANNOTATION = 'pgrotate.io/rotated-at';
/** The annotation naming the rotation that restarted it. */
export const ROTATION_ID_ANNOTATION = 'pgrotate.io/rotation-id';

/** The cluster's credentials: a kubeconfig file, else the pod's ServiceAccount (as the kubernetes provider). */
function loadKubeConfig(kubeconfig: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromCluster();
  if (!kc.getCurrentCluster())
    throw new Error(`${kubeconfig ? `kubeconfig ${kubeconfig}` : 'the in-cluster ServiceAccount'} names no cluster`);
  return kc;
}

/** Build the restarter (imported lazily by src/app: only configs with `restart:` load the client). */
export function createWorkloadRestarter(opts: KubernetesWorkloadRestarterOptions): WorkloadRestarter {
  return new KubernetesWorkloadRestarter(opts);
}

export interface KubernetesWorkloadRestarterOptions {
  config: KubernetesApiConfig | undefined;
  redactor: Redactor;
  log: Logger;
}

/** Patches Deployments, StatefulSets and DaemonSets so their pods are replaced. */
export class KubernetesWorkloadRestarter implements WorkloadRestarter {
  private api: KubernetesObjectApi | null = null;
  private readonly timeoutMs: number;

  constructor(private readonly opts: KubernetesWorkloadRestarterOptions) {
    this.timeoutMs = opts.config?.timeoutMs ?? 10_000;
  }

  /** Restart each workload (all at once); one outcome per workload, never a rejection. */
  restart(workloads: readonly WorkloadRef[], stamp: { rotationId: string; at: Date }): Promise<RestartOutcome[]> {
    return Promise.all(workloads.map((w) => this.restartOne(w, stamp)));
  }

  /** Nothing to release: the client keeps no connections of its own. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  private async restartOne(workload: WorkloadRef, stamp: { rotationId: string; at: Date }): Promise<RestartOutcome> {
    const patch = {
      apiVersion: 'apps/v1',
      kind: workload.kind,
      metadata: { name: workload.name, namespace: workload.namespace },
      spec: {
        template: {
          metadata: {
            annotations: {
              [ROTATED_AT_ANNOTATION]: stamp.at.toISOString(),
              [ROTATION_ID_ANNOTATION]: stamp.rotationId,
            },
          },
        },
      },
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      const api = this.client();
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      });
      await Promise.race([
        api.patch(patch, undefined, undefined, 'pgrotate', undefined, PatchStrategy.MergePatch),
        timeout,
      ]);
      this.opts.log.info({ workload: workloadLabel(workload), rotationId: stamp.rotationId }, 'workload restarted');
      return { workload, restarted: true, problem: null };
    } catch (err) {
      const problem = this.opts.redactor.scrub(describe(err));
      this.opts.log.warn({ workload: workloadLabel(workload), problem }, 'workload restart failed');
      return { workload, restarted: false, problem };
    } finally {
      clearTimeout(timer);
    }
  }

  private client(): KubernetesObjectApi {
    this.api ??= KubernetesObjectApi.makeApiClient(loadKubeConfig(this.opts.config?.kubeconfig));
    return this.api;
  }
}

/** What went wrong, as an operator acts on it: missing, forbidden, or the API's own words. */
function describe(err: unknown): string {
  if (err instanceof ApiException) {
    const code = (err as ApiException<unknown>).code;
    const body = (err as ApiException<unknown>).body;
    const reason = statusMessage(body);
    if (code === 404) return `not found (HTTP 404${reason ? `: ${reason}` : ''})`;
    if (code === 403) return `forbidden: pgrotate may not patch it (HTTP 403${reason ? `: ${reason}` : ''})`;
    return `HTTP ${code}${reason ? `: ${reason}` : ''}`;
  }
  return messageOf(err);
}

/** The `message` of a Kubernetes Status body (a JSON string or an object). */
function statusMessage(body: unknown): string | null {
  let value: unknown = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body) as unknown;
    } catch {
      return body.slice(0, 300);
    }
  }
  const message = (value as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message.slice(0, 300) : null;
}
