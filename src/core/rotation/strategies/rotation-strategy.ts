import type { ClientBase } from 'pg';
import type { RoleInfo } from '../../pg/role-admin.js';
import type { SecretValue } from '../../provider/secret-provider.js';
import type { RotationRecord } from '../../state/rotation-record.js';

// What differs between rotating one role (single-user) and a pair of roles taking turns
// (alternating). The engine picks one strategy per account (strategy-for.ts) and asks it;
// the protocol itself (stage, apply, verify, promote, record) is the same for both.

/** The roles a rotation sets and replaces. */
export interface RoleChoice {
  targetRole: string;
  /** The role applications use now, whose login the rotation retires (null: none known). */
  previousRole: string | null;
}

/** What the record step hands the strategy, on the admin connection. */
export interface RecordInput {
  rotation: RotationRecord;
  nextDueAt: Date | null;
  /** The single role's VALID UNTIL as pre-flight read it; undefined when not read (a resumed rotation). */
  roleValidUntil: Date | null | undefined;
  /** Facts a person should act on; the strategy adds its own. */
  warnings: string[];
}

/** One account's strategy-specific decisions. */
export interface RotationStrategy {
  /** The role pre-flight probes at once, before the current value is read (a recent probe may serve), or null. */
  readonly earlyProbeRole: string | null;
  /** Pre-flight checks only this strategy makes; returns the VALID UNTIL it read (undefined: none read). */
  inspect(roles: ReadonlyMap<string, RoleInfo>, warnings: string[]): Date | null | undefined;
  /** The role to set and the one it replaces, from the provider's current value. */
  chooseRoles(current: SecretValue | null): RoleChoice;
  /** Would a refused verify be undone (a credential to restore, an unused role), so a recent probe may serve? */
  undoable(current: SecretValue | null, choice: RoleChoice): boolean;
  /** The VALID UNTIL apply sets in the same statement as the password (undefined: leave it). */
  appliedValidUntil(): Date | 'infinity' | undefined;
  /** Is `role` a role applications do not read, going by the current value (its password may be removed)? */
  isInactive(role: string, current: SecretValue): boolean;
  /** Does the current value hold the rotated role's previous password, to restore when verify fails? */
  restorable(current: SecretValue, rotation: RotationRecord): boolean;
  /** When the credential the rotation replaces stops working (null: never had one). */
  oldCredentialExpiry(rotation: RotationRecord, terminateSessions: boolean): Date | null;
  /**
   * The old credential's expiry decided at stage, written in the new secret (previousValidUntil)
   * and set as VALID UNTIL at record; null: the secret does not announce one.
   */
  stagedOldCredentialExpiry(rotation: RotationRecord, terminateSessions: boolean): Date | null;
  /** The record step's strategy part, before sessions are ended: expiries, an adopted pair's other role. */
  afterPromote(client: ClientBase, input: RecordInput): Promise<void>;
}
