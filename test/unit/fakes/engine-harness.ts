import { accountSchema, type AccountConfig } from '../../../src/core/config/config-schema.js';
import type { Logger } from '../../../src/core/logging/logger.js';
import { Redactor } from '../../../src/core/logging/redactor.js';
import type { TargetConnector } from '../../../src/core/pg/target-connector.js';
import {
  RotationEngine,
  type RotateOptions,
  type RotationEngineDeps,
  type RotationResult,
} from '../../../src/core/rotation/rotation-engine.js';
import { FakeTargets } from './fake-targets.js';
import { InMemoryState } from './in-memory-fence.js';
import { InMemoryProvider } from './in-memory-provider.js';

// Builds a real RotationEngine over the in-memory fakes, for unit tests of the state machine.

/**
 * Low on purpose: the engine writes whatever count the config gives, and every verifier it
 * computes and every simulated login derives SCRAM keys. Measured (CPU of the five
 * rotation-state-machine files' tests, 2 busy cores): about 0.45 s at 64, 0.55-0.77 s at 4096.
 */
export const TEST_SCRAM_ITERATIONS = 64;

/** Log lines as the engine emitted them (before the real logger's own scrubbing). */
export class CapturingLogger {
  readonly lines: string[] = [];
  info(...args: unknown[]): void {
    this.lines.push(JSON.stringify(['info', ...args]));
  }
  warn(...args: unknown[]): void {
    this.lines.push(JSON.stringify(['warn', ...args]));
  }
  error(...args: unknown[]): void {
    this.lines.push(JSON.stringify(['error', ...args]));
  }
  debug(...args: unknown[]): void {
    this.lines.push(JSON.stringify(['debug', ...args]));
  }
  child(): CapturingLogger {
    return this;
  }
}

export interface Harness {
  engine: RotationEngine;
  state: InMemoryState;
  provider: InMemoryProvider;
  targets: FakeTargets;
  redactor: Redactor;
  log: CapturingLogger;
  account: AccountConfig;
  /** Results told to the engine's onResult observer. */
  observed: RotationResult[];
  rotate(opts?: RotateOptions): Promise<RotationResult>;
  /** Forget the calls recorded so far (after seeding a scenario), keeping all stored state. */
  clearCalls(): void;
}

export interface HarnessOptions {
  /** The account as it would appear in the config (defaults applied by the real schema). */
  account: Record<string, unknown>;
  verifyAttempts?: number;
  /** defaults.secretTemplate, as the config would give it. */
  secretTemplate?: Record<string, string>;
  ownLogin?: RotationEngineDeps['ownLogin'];
}

/** An engine over fresh fakes; the account's roles must be added to `targets` by the test. */
export function makeHarness(opts: HarnessOptions): Harness {
  const account = accountSchema.parse({ target: 'main', provider: 'mem', secret: 'pg/app', ...opts.account });
  const state = new InMemoryState();
  const provider = new InMemoryProvider('mem');
  const targets = new FakeTargets('main');
  const redactor = new Redactor();
  const log = new CapturingLogger();
  const observed: RotationResult[] = [];
  const deps: RotationEngineDeps = {
    // The deps name the concrete classes; the fakes have every member the engine uses.
    state: state as unknown as RotationEngineDeps['state'],
    targets: targets as unknown as TargetConnector,
    provider: (name) => {
      if (name !== provider.name) throw new Error(`unknown provider ${name}`);
      return provider;
    },
    redactor,
    log: log as unknown as Logger,
    defaults: {
      schedule: { every: 90 * 86_400_000 },
      password: { length: 32, alphabet: 'alphanumeric', require: [], exclude: '' },
      scramIterations: TEST_SCRAM_ITERATIONS,
      verifyAttempts: opts.verifyAttempts ?? 2,
      ...(opts.secretTemplate ? { secretTemplate: opts.secretTemplate } : {}),
    },
    // Failpoints stay inert whatever the test process's environment says.
    env: {},
    verifyBackoffMs: 0,
    onResult: (result) => observed.push(result),
    ...(opts.ownLogin ? { ownLogin: opts.ownLogin } : {}),
  };
  const engine = new RotationEngine(deps);
  return {
    engine,
    state,
    provider,
    targets,
    redactor,
    log,
    account,
    observed,
    rotate: (o) => engine.rotate(account, o),
    clearCalls() {
      state.calls.length = 0;
      state.audits.length = 0;
      provider.calls.length = 0;
      targets.sql.length = 0;
      targets.logins.length = 0;
      targets.probes.length = 0;
      targets.adminSessions = 0;
      targets.selfSessions = 0;
    },
  };
}
