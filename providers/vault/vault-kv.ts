import { parseSecretObject, parseSecretText, type SecretValue } from '../../src/core/provider/secret-provider.js';

// What a KV version 2 mount stores and describes, read without I/O: a secret's data and version,
// and whether a mount's description is KV version 2 at all.

/** One read of a KV v2 path. */
export interface KvRead {
  /** The latest version's data, or null when the secret is absent or its latest version deleted. */
  data: Record<string, unknown> | null;
  /** Latest version number (0 when the secret never existed): the check-and-set value for a write. */
  version: number;
  /** The latest version's created_time, when the store answered one. */
  createdTime?: string;
}

/** Decode stored data: the credential's fields, or one string field holding its JSON text. */
export function decodeKvData(data: Record<string, unknown>, where: { provider: string; secret: string }): SecretValue {
  const entries = Object.entries(data);
  const only = entries[0];
  if (entries.length === 1 && only && typeof only[1] === 'string' && !('username' in data) && !('password' in data))
    return parseSecretText(only[1], where);
  return parseSecretObject(data, where);
}

/**
 * Why a mount whose description (sys/internal/ui/mounts) is `data` is not KV version 2, or null
 * when it is, or when the description says nothing (then the first real call reports the problem).
 */
export function kvMountProblem(data: unknown, mount: string): string | null {
  const d = data as { type?: string; options?: { version?: string } | null } | undefined;
  if (!d?.type) return null;
  if (d.type !== 'kv' && d.type !== 'generic') return `is a "${d.type}" secrets engine, not KV version 2`;
  if (d.options?.version !== '2')
    return `is a KV version 1 mount; pgrotate needs KV version 2 for pending values, previous versions and check-and-set (upgrade it with "bao kv enable-versioning ${mount}")`;
  return null;
}
