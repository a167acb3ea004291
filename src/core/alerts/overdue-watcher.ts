import type { PgrotateConfig } from '../config/config-schema.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { StateStore } from '../state/state-store.js';
import type { AlertDispatcher } from './alert-dispatcher.js';

/** Default grace after a due time before an account counts as overdue. */
export const DEFAULT_OVERDUE_AFTER_MS = 3_600_000;

export interface OverdueAccount {
  name: string;
  target: string;
  nextDueAt: Date;
}

/** Configured accounts whose next due time passed more than `overdueAfter` ago. */
export async function findOverdue(state: StateStore, config: PgrotateConfig): Promise<OverdueAccount[]> {
  const after = config.alerts?.overdueAfter ?? DEFAULT_OVERDUE_AFTER_MS;
  const names = config.accounts.map((a) => a.name);
  if (names.length === 0) return [];
  return state.overdueAccounts(names, after);
}

/** Check for overdue accounts now and every `intervalMs`, alerting about each (repeats are throttled by the dispatcher). */
export function startOverdueWatcher(deps: {
  state: StateStore;
  config: PgrotateConfig;
  alerts: AlertDispatcher;
  log: Logger;
  intervalMs?: number;
}): { stop(): void } {
  let running = false;
  const check = async () => {
    if (running) return;
    running = true;
    try {
      for (const a of await findOverdue(deps.state, deps.config)) {
        const late = Math.round((Date.now() - a.nextDueAt.getTime()) / 60_000);
        deps.alerts.emit({
          event: 'account.overdue',
          account: a.name,
          target: a.target,
          message: `account ${a.name} was due at ${a.nextDueAt.toISOString()} (${late} min ago) and has not been rotated`,
          detail: { nextDueAt: a.nextDueAt.toISOString(), minutesLate: late },
          at: new Date(),
        });
      }
    } catch (err) {
      deps.log.warn({ error: messageOf(err) }, 'overdue check failed');
    } finally {
      running = false;
    }
  };
  void check();
  const timer = setInterval(() => void check(), deps.intervalMs ?? 60_000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
