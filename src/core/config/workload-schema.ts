import { z } from 'zod';

// Kubernetes workloads that pgrotate restarts once a rotation has promoted (`restart:`), and how
// it reaches their API server (`kubernetes:`). Names are checked as the API server would check
// them, so a typo is refused at load rather than as a 404 after a rotation.

/** A DNS-1123 label (namespaces): lowercase letters, digits and "-", at most 63. */
const namespaceSchema = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a Kubernetes namespace: lowercase letters, digits and "-" (max 63)');

/** A DNS-1123 subdomain (workload names): labels joined by ".", at most 253. */
const workloadNameSchema = z
  .string()
  .max(253)
  .regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    'a Kubernetes object name: lowercase letters, digits, "-" and "." (max 253)',
  );

export const workloadRefSchema = z.strictObject({
  kind: z.enum(['Deployment', 'StatefulSet', 'DaemonSet']),
  namespace: namespaceSchema,
  name: workloadNameSchema,
});
export type WorkloadRef = z.output<typeof workloadRefSchema>;

/** Workloads to restart after a promoted rotation; an empty list (on an account) opts out of defaults'. */
export const restartListSchema = z.array(workloadRefSchema).max(100);

export const kubernetesApiSchema = z.strictObject({
  /** A kubeconfig file (from outside a cluster); absent: the pod's ServiceAccount. */
  kubeconfig: z.string().min(1).optional(),
  /** How long one restart (one PATCH) may take before it is reported as failed. */
  timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
});
export type KubernetesApiConfig = z.output<typeof kubernetesApiSchema>;
