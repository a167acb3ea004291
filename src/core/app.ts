import type { AlertDispatcher } from './alerts/alert-dispatcher.js';
import type { AccountConfig, PgrotateConfig } from './config/config-schema.js';
import type { Logger } from './logging/logger.js';
import type { Redactor } from './logging/redactor.js';
import type { LiveCredential } from './pg/live-credential.js';
import type { TargetConnector } from './pg/target-connector.js';
import type { SecretProvider } from './provider/secret-provider.js';
import type { RotationEngine } from './rotation/rotation-engine.js';
import type { RotationObservers } from './rotation/rotation-observers.js';
import type { AuditRunStore } from './state/audit-run-store.js';
import type { StateStore } from './state/state-store.js';

// What the composition root (src/app/app-context.ts) builds from the config and hands to every
// layer above core: adapters, services and entry points depend on this shape, never on the root.

/** Everything a command needs, built once from the parsed config. */
export interface App {
  config: PgrotateConfig;
  redactor: Redactor;
  log: Logger;
  state: StateStore;
  targets: TargetConnector;
  providers: Map<string, SecretProvider>;
  /** The one engine: the CLI, the HTTP API, offboarding and jobs all rotate through it. */
  engine: RotationEngine;
  /** Stored security-audit runs and findings. */
  auditRuns: AuditRunStore;
  /** The state login's password when it comes from a provider (pgrotate may rotate it), else null. */
  stateCredential: LiveCredential | null;
  /** Listeners of every rotation this process runs (metrics, alerts); the engine's `onResult`. */
  rotationObservers: RotationObservers;
  /** Webhook alerts (a no-op without `alerts` in the config). */
  alerts: AlertDispatcher;
  /** The account named `name`, or an error that names it. */
  account(name: string): AccountConfig;
  /**
   * Flush alerts and close the pools and providers; the first call decides, later ones return the
   * same promise. `by` (ms since epoch) bounds it all; `abandon`: work is still running in this
   * process (cut short at shutdown), so only the alerts are flushed and the exit closes the rest.
   */
  close(opts?: AppCloseOptions): Promise<void>;
}

/** How `App.close` ends a process. */
export interface AppCloseOptions {
  by?: number;
  abandon?: boolean;
}
