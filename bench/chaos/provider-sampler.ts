import { existsSync, readFileSync } from 'node:fs';

// Reads the chaos run's secret stores directly (OpenBao over its HTTP API with the root token,
// bypassing the fault proxy; the file provider's two JSON files), so the harness knows every
// password that was ever current, pending or previous — the candidates for invariant I1 and
// the needles for the leak scan — and each account's values at check time.

export interface Credential {
  username: string;
  password: string;
  /** The rotation that wrote the value (absent on values pgrotate did not write). */
  rotationId?: string;
}

export interface HeldValues {
  current: Credential | null;
  pending: Credential | null;
  previous: Credential | null;
}

export interface SampledAccount {
  name: string;
  provider: 'vault' | 'file';
  secret: string;
}

export interface ProviderSampler {
  /** Read every store once, adding what is new to the candidates. */
  sample(): Promise<void>;
  /** Every password seen for the account. */
  candidates(account: string): Set<string>;
  /** Every password seen in any store. */
  all(): Set<string>;
  /** The account's values now (alternating previous included). */
  held(account: SampledAccount): Promise<HeldValues>;
  /** What an application reads now: the provider's current value (null if none or unreadable). */
  current(account: SampledAccount): Promise<Credential | null>;
  /** Rotation ids whose value has been seen as the provider's current (not pending). */
  seenCurrent(account: string): Set<string>;
}

/** A sampler over one OpenBao server (KV v2 at `secret/`, pending under pgrotate-pending/) and one file store. */
export function createProviderSampler(opts: {
  baoAddress: string;
  baoToken: string;
  secretsFile: string;
  accounts: SampledAccount[];
}): ProviderSampler {
  const seen = new Map<string, Set<string>>();
  const readVersions = new Map<string, Set<number>>();
  const currentIds = new Map<string, Set<string>>();
  const add = (account: string, c: Credential | null) => {
    if (!c) return;
    let set = seen.get(account);
    if (!set) seen.set(account, (set = new Set()));
    set.add(c.password);
  };
  /** A value that is or was the provider's current (never a pending one). */
  const addCurrent = (account: string, c: Credential | null) => {
    add(account, c);
    if (!c?.rotationId) return;
    let set = currentIds.get(account);
    if (!set) currentIds.set(account, (set = new Set()));
    set.add(c.rotationId);
  };

  const bao = async (path: string): Promise<Record<string, unknown> | null> => {
    const res = await fetch(`${opts.baoAddress}/v1/${path}`, {
      headers: { 'X-Vault-Token': opts.baoToken },
      signal: AbortSignal.timeout(3000),
    });
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`bao ${path}: HTTP ${res.status}`);
    return (await res.json()) as Record<string, unknown>;
  };
  const encode = (secret: string) => secret.split('/').map(encodeURIComponent).join('/');
  const baoValue = async (path: string): Promise<Credential | null> => {
    const body = await bao(path);
    const data = (body?.data as { data?: Record<string, unknown> } | undefined)?.data;
    return toCredential(data);
  };
  const baoMeta = async (secret: string) => {
    const body = await bao(`secret/metadata/${encode(secret)}`);
    const data = body?.data as
      | { current_version?: number; versions?: Record<string, { destroyed?: boolean; deletion_time?: string }> }
      | undefined;
    return data ?? null;
  };

  const readFileStore = (): {
    current: Record<string, unknown>;
    pending: Record<string, unknown>;
    previous: Record<string, unknown>;
  } => {
    const parse = (p: string) => {
      if (!existsSync(p)) return {};
      try {
        return JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
      } catch {
        return {}; // mid-rename; the next sample reads it
      }
    };
    const side = parse(`${opts.secretsFile}.pgrotate.json`) as {
      pending?: Record<string, unknown>;
      previous?: Record<string, unknown>;
    };
    return { current: parse(opts.secretsFile), pending: side.pending ?? {}, previous: side.previous ?? {} };
  };

  const sampler: ProviderSampler = {
    async sample() {
      const store = readFileStore();
      for (const a of opts.accounts) {
        if (a.provider === 'file') {
          addCurrent(a.name, toCredential(store.current[a.secret]));
          add(a.name, toCredential(store.pending[a.secret]));
          addCurrent(a.name, toCredential(store.previous[a.secret]));
          continue;
        }
        try {
          add(a.name, await baoValue(`secret/data/pgrotate-pending/${encode(a.secret)}`));
          const meta = await baoMeta(a.secret);
          const done = readVersions.get(a.name) ?? new Set<number>();
          readVersions.set(a.name, done);
          for (const [v, info] of Object.entries(meta?.versions ?? {})) {
            const version = Number(v);
            if (done.has(version) || info.destroyed || info.deletion_time) continue;
            addCurrent(a.name, await baoValue(`secret/data/${encode(a.secret)}?version=${version}`));
            done.add(version);
          }
        } catch {
          // sealed or restarting: the next sample catches up (versions stay readable)
        }
      }
    },
    candidates: (account) => new Set(seen.get(account) ?? []),
    all() {
      const out = new Set<string>();
      for (const s of seen.values()) for (const p of s) out.add(p);
      return out;
    },
    async held(a) {
      if (a.provider === 'file') {
        const store = readFileStore();
        return {
          current: toCredential(store.current[a.secret]),
          pending: toCredential(store.pending[a.secret]),
          previous: toCredential(store.previous[a.secret]),
        };
      }
      const meta = await baoMeta(a.secret);
      const cur = meta?.current_version ?? 0;
      const current = cur > 0 ? await baoValue(`secret/data/${encode(a.secret)}?version=${cur}`) : null;
      const previous = cur > 1 ? await baoValue(`secret/data/${encode(a.secret)}?version=${cur - 1}`) : null;
      const pending = await baoValue(`secret/data/pgrotate-pending/${encode(a.secret)}`);
      for (const c of [current, previous]) addCurrent(a.name, c);
      add(a.name, pending);
      return { current, pending, previous };
    },
    async current(a) {
      if (a.provider === 'file') return toCredential(readFileStore().current[a.secret]);
      try {
        return await baoValue(`secret/data/${encode(a.secret)}`);
      } catch {
        return null; // sealed or restarting
      }
    },
    seenCurrent: (account) => new Set(currentIds.get(account) ?? []),
  };
  return sampler;
}

function toCredential(value: unknown): Credential | null {
  let v = value;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      return null;
    }
  }
  if (!v || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  // A single string field holding the JSON (the vault provider reads that form too).
  if (typeof o.value === 'string' && o.password === undefined) return toCredential(o.value);
  if (typeof o.username !== 'string' || typeof o.password !== 'string') return null;
  return typeof o.rotationId === 'string'
    ? { username: o.username, password: o.password, rotationId: o.rotationId }
    : { username: o.username, password: o.password };
}
