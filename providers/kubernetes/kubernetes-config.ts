import { z } from 'zod';
import { checkedString } from '../../src/core/config/field-schemas.js';
import { namespaceProblem } from './kubernetes-names.js';

// `type: kubernetes`: Secrets in one namespace of a Kubernetes cluster.

export const kubernetesProviderSchema = z.strictObject({
  type: z.literal('kubernetes'),
  /** The namespace of the account Secrets (and of their pgrotate companions). */
  namespace: checkedString(namespaceProblem),
  /** A kubeconfig file, from outside the cluster; without it the pod's ServiceAccount is used. */
  kubeconfig: z.string().min(1).optional(),
  /** The kubeconfig context to use (default: its current-context). Only with kubeconfig. */
  context: z.string().min(1).optional(),
});
export type KubernetesProviderConfig = z.output<typeof kubernetesProviderSchema>;
