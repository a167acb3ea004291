// A secret store the benchmark can rotate through. Each bench/providers/<name>-bench-provider.ts
// exports `benchProvider: BenchProvider`; the runner (bench/run-bench.ts) starts PostgreSQL,
// creates the accounts and rotates them through every provider whose setup succeeds.

export interface BenchProviderInstance {
  /** The provider's config entry, exactly as it would appear under `providers.<name>` in YAML. */
  config: Record<string, unknown>;
  /** Environment variables the config references (env:NAME). */
  env?: Record<string, string>;
  /**
   * The OpenBao server behind the provider, when there is one: the benchmark counts pgrotate's
   * requests through a proxy in front of it, reads its CPU, and runs the OpenBao peer row on it.
   */
  bao?: { address: string; token: string; pid: number };
  /** A secret-store audit log the leak scan must search (OpenBao's file audit device). */
  auditFile?: string;
  /** Stop anything setup started. */
  stop(): Promise<void>;
}

export interface BenchProvider {
  name: string;
  /** Start (or connect to) the store; throw with a clear reason when it cannot run here. */
  setup(): Promise<BenchProviderInstance>;
}
