import type { ClientBase } from 'pg';
import type { AccountConfig } from '../../config/config-schema.js';
import { clearPassword, setValidUntil } from '../../pg/role-admin.js';
import type { SecretValue } from '../../provider/secret-provider.js';
import type { RotationRecord } from '../../state/rotation-record.js';
import type { RecordInput, RoleChoice, RotationStrategy } from './rotation-strategy.js';

type AlternatingAccount = Extract<AccountConfig, { strategy: 'alternating' }>;

/**
 * Two roles taking turns: each rotation sets the role applications do not use, and the one
 * they used keeps working for the grace period (or until sessions are ended).
 */
export class AlternatingStrategy implements RotationStrategy {
  readonly earlyProbeRole = null;

  constructor(private readonly account: AlternatingAccount) {}

  inspect(): undefined {
    // The inactive role's expiry is set by apply itself; nothing to read here.
    return undefined;
  }

  chooseRoles(current: SecretValue | null): RoleChoice {
    const [first, second] = this.account.roles;
    const active = current && this.account.roles.includes(current.username) ? current.username : null;
    return { targetRole: active === first ? second : first, previousRole: active };
  }

  undoable(_current: SecretValue | null, choice: RoleChoice): boolean {
    return choice.previousRole !== null;
  }

  appliedValidUntil(): Date | 'infinity' {
    // The inactive role may carry an old expiry; the new password must not.
    const renew = this.account.renewValidUntil;
    return renew !== undefined ? new Date(Date.now() + renew) : 'infinity';
  }

  isInactive(role: string, current: SecretValue): boolean {
    return current.username !== role;
  }

  restorable(): boolean {
    // The rotated role's password was never the one applications read: nothing to restore.
    return false;
  }

  oldCredentialExpiry(rotation: RotationRecord, terminateSessions: boolean): Date | null {
    if (!rotation.previousRole) return null;
    return terminateSessions ? new Date() : new Date(Date.now() + this.account.gracePeriod);
  }

  stagedOldCredentialExpiry(rotation: RotationRecord, terminateSessions: boolean): Date | null {
    // Applications still reading the previous role learn from the new secret when it stops.
    return this.oldCredentialExpiry(rotation, terminateSessions);
  }

  async afterPromote(client: ClientBase, { rotation }: RecordInput): Promise<void> {
    const expiry = rotation.oldCredentialExpiresAt;
    if (rotation.previousRole && expiry) await setValidUntil(client, rotation.previousRole, expiry);
    if (!rotation.previousRole) {
      // Adopting a pair: the other role's password was never in the provider, so it must not
      // keep working (I1). It gets a managed password when its turn comes.
      const other = this.account.roles.find((r) => r !== rotation.targetRole) as string;
      await clearPassword(client, other);
    }
  }
}
