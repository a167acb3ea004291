import type { Logger } from '../src/core/logging/logger.js';
import type { Redactor } from '../src/core/logging/redactor.js';

/** What a provider factory may use besides its own config. */
export interface ProviderDeps {
  redactor: Redactor;
  log: Logger;
  /** The process environment as the command sees it (tests pass their own). */
  env?: NodeJS.ProcessEnv | undefined;
}
