import type { ClientBase } from 'pg';
import type { AccountConfig } from '../../config/config-schema.js';
import { RoleExpiredError } from '../../errors.js';
import { quoteIdent } from '../../pg/quote.js';
import { roleValidUntil, setValidUntil, type RoleInfo } from '../../pg/role-admin.js';
import type { SecretValue } from '../../provider/secret-provider.js';
import type { RotationRecord } from '../../state/rotation-record.js';
import { accountError } from '../account-error.js';
import type { RecordInput, RoleChoice, RotationStrategy } from './rotation-strategy.js';

type SingleUserAccount = Extract<AccountConfig, { strategy: 'single-user' }>;

/**
 * One role, one password: the new password replaces the old at apply, so the old one stops
 * working then. The role's VALID UNTIL is the user's unless the account sets renewValidUntil.
 */
export class SingleUserStrategy implements RotationStrategy {
  readonly earlyProbeRole: string;

  constructor(private readonly account: SingleUserAccount) {
    this.earlyProbeRole = account.role;
  }

  inspect(roles: ReadonlyMap<string, RoleInfo>, warnings: string[]): Date | null {
    // The alternating strategy sets the inactive role's expiry itself; a single role's is the user's.
    const info = roles.get(this.account.role) as RoleInfo;
    this.checkExpiry(info);
    const limitNote = connectionLimitNote(info);
    if (limitNote) warnings.push(limitNote);
    return info.validUntil;
  }

  chooseRoles(current: SecretValue | null): RoleChoice {
    return { targetRole: this.account.role, previousRole: current ? this.account.role : null };
  }

  undoable(current: SecretValue | null): boolean {
    return current?.username === this.account.role;
  }

  appliedValidUntil(): Date | undefined {
    const renew = this.account.renewValidUntil;
    return renew !== undefined ? new Date(Date.now() + renew) : undefined;
  }

  isInactive(): boolean {
    // Applications read the one role: it is never inactive.
    return false;
  }

  restorable(current: SecretValue, rotation: RotationRecord): boolean {
    return current.username === rotation.targetRole && current.rotationId !== rotation.id;
  }

  oldCredentialExpiry(rotation: RotationRecord): Date {
    return rotation.appliedAt ?? new Date();
  }

  stagedOldCredentialExpiry(): null {
    // The one role's old password stops at apply: there is no previous login to announce.
    return null;
  }

  async afterPromote(client: ClientBase, input: RecordInput): Promise<void> {
    if (this.account.renewValidUntil === undefined) await this.warnEarlyExpiry(client, input);
    else if (input.roleValidUntil === undefined)
      await this.renewAfterResume(client, input, this.account.renewValidUntil);
  }

  /** The role's own VALID UNTIL before the next due rotation: its password stops working then. */
  private async warnEarlyExpiry(client: ClientBase, { nextDueAt, roleValidUntil: read, warnings }: RecordInput) {
    const role = this.account.role;
    // Read again only when pre-flight did not (a resumed rotation).
    const validUntil = read !== undefined ? read : await roleValidUntil(client, role);
    if (validUntil && nextDueAt && validUntil.getTime() < nextDueAt.getTime()) {
      warnings.push(
        `role ${JSON.stringify(role)} has VALID UNTIL ${validUntil.toISOString()}, before the next due rotation at ${nextDueAt.toISOString()}: its password stops working then (extend it, or set renewValidUntil on the account)`,
      );
    }
  }

  /**
   * A resumed rotation: apply set VALID UNTIL to its time + renewValidUntil, and the role's
   * expiry belongs to pgrotate, but it may have been moved earlier while the rotation was
   * unfinished (the promoted password would then stop working): set it again.
   */
  private async renewAfterResume(client: ClientBase, { rotation, warnings }: RecordInput, renew: number) {
    const role = this.account.role;
    const validUntil = await roleValidUntil(client, role);
    const appliedAt = (rotation.appliedAt ?? new Date()).getTime();
    if (validUntil && validUntil.getTime() < appliedAt + renew - 60_000) {
      const renewed = new Date(Date.now() + renew);
      await setValidUntil(client, role, renewed);
      warnings.push(
        `role ${JSON.stringify(role)} had VALID UNTIL ${validUntil.toISOString()} when this unfinished rotation resumed; renewValidUntil set it to ${renewed.toISOString()}`,
      );
    }
  }

  /** An expired role is refused unless the account renews VALID UNTIL with the password. */
  private checkExpiry(info: RoleInfo): void {
    const account = this.account;
    if (!info.validUntil || account.renewValidUntil !== undefined) return;
    if (info.validUntil.getTime() > Date.now()) return;
    throw accountError(
      RoleExpiredError,
      account,
      `account ${account.name}: role ${JSON.stringify(info.name)} on target ${account.target} expired at ${info.validUntil.toISOString()} (VALID UNTIL), so PostgreSQL refuses every password for it and a new one could not be verified. ` +
        `Extend it (ALTER ROLE ${quoteIdent(info.name)} VALID UNTIL 'infinity'), or set renewValidUntil on the account so each rotation sets a new expiry with the new password`,
    );
  }
}

/** A note when the role has no free session left: verify then rests on the server's answer. */
function connectionLimitNote(info: RoleInfo): string | null {
  if (info.connectionLimit < 0 || info.sessions < info.connectionLimit) return null;
  return `role ${JSON.stringify(info.name)} is at its CONNECTION LIMIT (${info.sessions} of ${info.connectionLimit} sessions); applications cannot open new sessions until one ends`;
}
