import type { AccountConfig } from '../config/config-schema.js';
import type { KeptSecretKeys, SecretProvider, SecretValue } from '../provider/secret-provider.js';
import type { RotationFence } from '../state/rotation-fence.js';
import type { RotationRecord } from '../state/rotation-record.js';
import type { RotateOptions } from './rotate-options.js';
import type { RotationResult } from './rotation-result.js';
import type { RoleChoice, RotationStrategy } from './strategies/rotation-strategy.js';

// What the steps of one rotation share while it runs.

/** One rotation in progress, under its fence. */
export interface RotationContext {
  account: AccountConfig;
  strategy: RotationStrategy;
  provider: SecretProvider;
  fence: RotationFence;
  rotation: RotationRecord;
  opts: RotateOptions;
  /** The pending value this process staged; a resumed rotation reads it from the provider instead. */
  staged?: SecretValue;
  /** The single-user role's VALID UNTIL as pre-flight read it; undefined when not read (a resumed rotation). */
  roleValidUntil?: Date | null;
  /** The current secret's keys pgrotate does not own, as pre-flight read them (null: none); undefined when not read. */
  kept?: KeptSecretKeys | null;
  /** The provider's current value as pre-flight read it; undefined when not read (a resumed rotation). */
  current?: SecretValue | null;
  /** Who asked for the sessions to end: this attempt's requester when it asked, else the rotation's. */
  sessionsActor: string | null;
  warnings: string[];
}

/** What pre-flight decided and learned. */
export interface Plan extends RoleChoice {
  roleValidUntil?: Date | null;
  /** The keys the new value keeps from the current secret; null when it has none. */
  kept: KeptSecretKeys | null;
  warnings: string[];
  /** The provider's current value when pre-flight read it. */
  current: SecretValue | null;
}

/** What a finished run reports; `sessionsError` when the rotation succeeded but sessions could not be ended. */
export type Completed = Pick<RotationResult, 'oldCredentialExpiresAt' | 'nextDueAt' | 'sessionsEnded' | 'restarts'> & {
  sessionsError: string | null;
};
