import type { AccountConfig } from '../../config/config-schema.js';
import { AlternatingStrategy } from './alternating.js';
import type { RotationStrategy } from './rotation-strategy.js';
import { SingleUserStrategy } from './single-user.js';

/** The strategy of one account: the only place the engine looks at `account.strategy`. */
export function strategyFor(account: AccountConfig): RotationStrategy {
  return account.strategy === 'alternating' ? new AlternatingStrategy(account) : new SingleUserStrategy(account);
}
