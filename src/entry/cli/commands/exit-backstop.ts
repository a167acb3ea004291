import type { App } from '../../../core/app.js';
import { ExitCode } from '../../../core/errors.js';
import { EXIT_BACKSTOP_MS, EXIT_BUDGET_MS } from '../../../core/shutdown-budget.js';

/** The deadlines of a long-running command's exit, ms since epoch. */
export interface ExitDeadlines {
  /** Running work (rotations, API requests) is waited for until then: now + shutdownTimeout. */
  waitBy: number;
  /** Everything at exit is done by then: waitBy + the close budget. */
  exitBy: number;
}

/**
 * Start the clock of an orderly stop that began now. With `backstop` (a real process, not a test
 * calling the command), a timer ends the process shortly after `exitBy` should a close ignore
 * its deadline: a pod's grace period is sized from these numbers, and a SIGKILL would be worse.
 */
export function armExitBackstop(app: App, shutdownTimeoutMs: number, backstop: boolean): ExitDeadlines {
  const waitBy = Date.now() + shutdownTimeoutMs;
  const exitBy = waitBy + EXIT_BUDGET_MS;
  if (backstop) {
    setTimeout(
      () => {
        app.log.error({ shutdownTimeoutMs }, 'exit took longer than shutdownTimeout and the close budget; exiting now');
        process.exit(ExitCode.ok);
      },
      exitBy - Date.now() + EXIT_BACKSTOP_MS,
    ).unref();
  }
  return { waitBy, exitBy };
}
