// Kubernetes object names. A Secret's name is a DNS subdomain (RFC 1123: at most 253 lowercase
// letters, digits, "-" and ".", starting and ending with a letter or digit) and a namespace is a
// DNS label (at most 63, no "."). pgrotate keeps an account's pending and previous values in a
// companion Secret `<secret><COMPANION_SUFFIX>` beside it, so a rotated secret's name leaves room.

export const COMPANION_SUFFIX = '-pgrotate';
const MAX_SUBDOMAIN = 253;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The companion Secret holding `secret`'s pending and previous values (consumers never read it). */
export function companionName(secret: string): string {
  return `${secret}${COMPANION_SUFFIX}`;
}

/** Why `namespace` is not a Kubernetes namespace name, or null when it is. */
export function namespaceProblem(namespace: string): string | null {
  return LABEL.test(namespace)
    ? null
    : 'not a Kubernetes namespace name (at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit)';
}

/**
 * Why `secret` cannot be a Secret's name, or null when it can. `rotated`: an account's secret,
 * whose companion `<secret>-pgrotate` must be a valid name too.
 */
export function kubernetesSecretNameProblem(secret: string, rotated: boolean): string | null {
  if (secret.length > MAX_SUBDOMAIN || !SUBDOMAIN.test(secret)) {
    return `${JSON.stringify(secret)} is not a valid Kubernetes Secret name (at most 253 lowercase letters, digits, "-" and ".", starting and ending with a letter or digit)`;
  }
  if (rotated && companionName(secret).length > MAX_SUBDOMAIN) {
    return `${JSON.stringify(secret)} is too long for Kubernetes: its companion Secret ${JSON.stringify(companionName(secret))} would exceed 253 characters (use at most ${MAX_SUBDOMAIN - COMPANION_SUFFIX.length})`;
  }
  if (rotated && secret.endsWith(COMPANION_SUFFIX)) {
    return `${JSON.stringify(secret)} ends in ${JSON.stringify(COMPANION_SUFFIX)}, which pgrotate reserves for its companion Secrets`;
  }
  return null;
}
