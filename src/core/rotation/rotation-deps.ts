import type { AccountConfig, PasswordPolicyConfig, Schedule, WorkloadRef } from '../config/config-schema.js';
import type { Logger } from '../logging/logger.js';
import type { Redactor } from '../logging/redactor.js';
import type { TargetConnector } from '../pg/target-connector.js';
import type { SecretProvider } from '../provider/secret-provider.js';
import type { StateStore } from '../state/state-store.js';
import type { RotationResult } from './rotation-result.js';
import type { WorkloadRestarter } from './workload-restart.js';

/** What the rotation engine is built from (src/app wires the real ones, unit tests the fakes). */
export interface RotationEngineDeps {
  state: StateStore;
  targets: TargetConnector;
  provider: (name: string) => SecretProvider;
  redactor: Redactor;
  log: Logger;
  defaults: {
    schedule: Schedule;
    password: PasswordPolicyConfig;
    scramIterations: number;
    verifyAttempts: number;
    secretTemplate?: Record<string, string> | undefined;
    /** Workloads an account without its own `restart` list restarts. */
    restart?: readonly WorkloadRef[];
  };
  /** Rolls the workloads of `restart:` lists after a promote; absent: they are reported as not restarted. */
  restarter?: WorkloadRestarter;
  env?: NodeJS.ProcessEnv;
  /** Delay between verify attempts; tests shorten it. */
  verifyBackoffMs?: number;
  /**
   * pgrotate's own login that this account's secret holds (the state or an admin login), or
   * null. Told each password the moment PostgreSQL starts accepting it, so this process's next
   * connection as that login uses it.
   */
  ownLogin?: (account: AccountConfig) => { readonly username: string; set(password: string): void } | null;
  /** Told every result with its wall-clock duration (metrics, alerts); must not throw or block. */
  onResult?: (result: RotationResult, durationMs: number) => void;
}
