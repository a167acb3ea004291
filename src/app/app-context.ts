import type { App, AppCloseOptions } from '../core/app.js';
import { msUntil, settleWithin } from '../core/concurrency/settle-within.js';
import type { AccountConfig, PgrotateConfig, TargetConfig } from '../core/config/config-schema.js';
import type { LoadedConfig } from '../core/config/load-config.js';
import { ConfigError, UnknownAccountError, messageOf } from '../core/errors.js';
import { createLogger, type Logger } from '../core/logging/logger.js';
import { Redactor } from '../core/logging/redactor.js';
import { parsePostgresUrl, sslOptions } from '../core/pg/connection-options.js';
import { checkLogin, verdictOf, type LiveCredential } from '../core/pg/live-credential.js';
import { TargetConnector, type AdminCredentials } from '../core/pg/target-connector.js';
import { AlertDispatcher } from '../core/alerts/alert-dispatcher.js';
import { alertOnRestartFailures, alertOnRotationFailures } from '../core/alerts/rotation-alerts.js';
import type { WorkloadRestarter } from '../core/rotation/workload-restart.js';
import { RotationEngine } from '../core/rotation/rotation-engine.js';
import { RotationObservers } from '../core/rotation/rotation-observers.js';
import { StateStore } from '../core/state/state-store.js';
import { createProvider } from '../../providers/provider-registry.js';
import type { SecretProvider } from '../core/provider/secret-provider.js';
import { OwnLogins } from './own-logins.js';

export interface AppOptions {
  log?: Logger;
  redactor?: Redactor;
  env?: NodeJS.ProcessEnv;
  /** Delay between verify attempts (tests shorten it). */
  verifyBackoffMs?: number;
  /** How long an open login-path probe serves the same role's next rotations (tests shorten it; default 10 s). */
  probeReuseMs?: number;
  /**
   * Targets the command is about to use: their admin connections open while the state database
   * connects instead of after it (see warmAdmin). Only targets whose admin password is in the config.
   */
  warmTargets?: readonly string[];
}

/** Connect to the state database (migrating it), build providers, targets and the engine. */
export async function createApp(loaded: LoadedConfig, opts: AppOptions = {}): Promise<App> {
  const { config } = loaded;
  const redactor = secretsRedactor(loaded, opts.redactor ?? new Redactor());
  const log = opts.log ?? createLogger(redactor);
  const { providers, provider } = await openProviders(config, { redactor, log, env: opts.env ?? process.env });
  const ownLogins = new OwnLogins(provider, redactor);
  const targets = adminConnector(config, ownLogins, redactor, opts);

  // Started before anything waits on the state database, so the two logins overlap.
  const warming = warmAdmin(targets, config.targets, opts.warmTargets ?? []);
  const closeEarly = async (): Promise<void> => {
    await closeProviders(providers);
    // Not waited for: a warm-up still trying a slow target must not hold up the state database's
    // error; its pool closes as soon as the attempt settles.
    void warming.settled.then(() => targets.close());
  };
  const { state, stateCredential } = await openState(config, ownLogins, redactor, closeEarly);
  const rotationObservers = new RotationObservers();
  const byName = new Map(config.accounts.map((a) => [a.name, a]));
  const alerts = await startAlerts(config, { redactor, log, state, byName, rotationObservers });
  const restarter = workloadRestarter(config, redactor, log);
  const engine = new RotationEngine({
    ...(restarter ? { restarter } : {}),
    onResult: (result, ms) => rotationObservers.notify(result, ms),
    state,
    targets,
    provider,
    redactor,
    log,
    defaults: config.defaults,
    env: opts.env,
    verifyBackoffMs: opts.verifyBackoffMs,
    ownLogin: (account) => ownLogins.find(account.provider, account.secret),
  });
  let closing: Promise<void> | null = null;
  return {
    config,
    redactor,
    log,
    state,
    targets,
    providers,
    engine,
    stateCredential,
    auditRuns: state.auditRuns,
    rotationObservers,
    alerts,
    account(name: string): AccountConfig {
      const a = byName.get(name);
      if (!a) throw new UnknownAccountError(`unknown account "${name}" (not in ${loaded.source})`, { account: name });
      return a;
    },
    close(closeOpts: AppCloseOptions = {}) {
      closing ??= closeApp(closeOpts, { alerts, closeTargets: warming.closeTargets, state, providers });
      return closing;
    },
  };
}

/** The alert dispatcher, sending what earlier processes left in the outbox, told of failed rotations and restarts. */
async function startAlerts(
  config: PgrotateConfig,
  deps: {
    redactor: Redactor;
    log: Logger;
    state: StateStore;
    byName: Map<string, AccountConfig>;
    rotationObservers: RotationObservers;
  },
): Promise<AlertDispatcher> {
  const { redactor, log, state, byName, rotationObservers } = deps;
  const alerts = new AlertDispatcher({
    config: config.alerts,
    redactor,
    log: log.child({ component: 'alerts' }),
    outbox: state.outbox,
    account: (name) => byName.get(name),
  });
  await alerts.start();
  alertOnRotationFailures(rotationObservers, alerts);
  alertOnRestartFailures(rotationObservers, alerts);
  return alerts;
}

/**
 * The Kubernetes API client for `restart:` lists: null when no account restarts workloads, else
 * loaded at the first restart (a `status` or `verify` never loads the client). Like the real one,
 * it never rejects: a client that cannot load is a problem on each workload.
 */
function workloadRestarter(config: PgrotateConfig, redactor: Redactor, log: Logger): WorkloadRestarter | null {
  const wanted = config.defaults.restart.length > 0 || config.accounts.some((a) => (a.restart?.length ?? 0) > 0);
  if (!wanted) return null;
  let loading: Promise<WorkloadRestarter> | null = null;
  const load = () =>
    (loading ??= import('../../providers/kubernetes/workload-restarter.js').then((m) =>
      m.createWorkloadRestarter({ config: config.kubernetes, redactor, log: log.child({ component: 'restart' }) }),
    ));
  return {
    async restart(workloads, stamp) {
      try {
        return await (await load()).restart(workloads, stamp);
      } catch (err) {
        const problem = `the Kubernetes client could not load: ${redactor.scrub(messageOf(err))}`;
        return workloads.map((workload) => ({ workload, restarted: false, problem }));
      }
    },
    async close() {
      if (loading) await (await loading.catch(() => null))?.close();
    },
  };
}

/** `redactor` knowing every secret of the config: referenced values, the state and admin passwords. */
function secretsRedactor(loaded: LoadedConfig, redactor: Redactor): Redactor {
  const { config } = loaded;
  for (const value of loaded.referencedValues) redactor.add(value);
  if (typeof config.state.password === 'string') redactor.add(config.state.password);
  // A password inside state.url (discouraged, but valid) is a secret of its own, apart from the URL.
  redactor.add(parsePostgresUrl(config.state.url, 'state.url').password);
  for (const t of Object.values(config.targets))
    if (t.admin !== 'self' && 'password' in t.admin) redactor.add(t.admin.password);
  return redactor;
}

/** Every configured provider, made one after the other, and a lookup that names an unknown one. */
async function openProviders(
  config: PgrotateConfig,
  deps: { redactor: Redactor; log: Logger; env: NodeJS.ProcessEnv },
): Promise<{ providers: Map<string, SecretProvider>; provider: (name: string) => SecretProvider }> {
  const providers = new Map<string, SecretProvider>();
  for (const [name, pc] of Object.entries(config.providers)) providers.set(name, await createProvider(name, pc, deps));
  const provider = (name: string): SecretProvider => {
    const p = providers.get(name);
    if (!p) throw new ConfigError(`unknown provider ${name}`);
    return p;
  };
  return { providers, provider };
}

async function closeProviders(providers: Map<string, SecretProvider>): Promise<void> {
  await Promise.all([...providers.values()].map((p) => p.close().catch(() => undefined)));
}

/** The targets' admin connections; a provider-held admin password is read when first needed. */
function adminConnector(
  config: PgrotateConfig,
  ownLogins: OwnLogins,
  redactor: Redactor,
  opts: AppOptions,
): TargetConnector {
  const resolveAdmin = async (targetName: string, target: TargetConfig): Promise<AdminCredentials> => {
    if (target.admin === 'self')
      throw new ConfigError(
        `target ${targetName} has admin: self (no admin login); this needs an admin login: give the target one (admin: { username, password } or { provider, secret })`,
        { target: targetName },
      );
    if ('username' in target.admin) return { username: target.admin.username, password: target.admin.password };
    const label = `admin secret ${target.admin.secret}`;
    const credential = ownLogins.login(target.admin.provider, target.admin.secret, label, async (user, password) =>
      verdictOf(await targets.tryLogin(targetName, user, password, 'pgrotate-resolve')),
    );
    const value = await credential.resolve().catch((err: unknown) => {
      throw new ConfigError(`target ${targetName}: ${redactor.scrub(messageOf(err))}`, { target: targetName });
    });
    return { ...value, credential };
  };
  const targets: TargetConnector = new TargetConnector({
    targets: config.targets,
    resolveAdmin,
    redactor,
    scramIterations: config.defaults.scramIterations,
    ...(opts.probeReuseMs !== undefined ? { probeReuseMs: opts.probeReuseMs } : {}),
  });
  return targets;
}

/**
 * Open (and migrate) the state database, reading its password from a provider first when the
 * config says so. On failure `closeEarly` runs before the error is thrown.
 */
async function openState(
  config: PgrotateConfig,
  ownLogins: OwnLogins,
  redactor: Redactor,
  closeEarly: () => Promise<void>,
): Promise<{ state: StateStore; stateCredential: LiveCredential | null }> {
  const stateEndpoint = parsePostgresUrl(config.state.url, 'state.url');
  const stateSsl = sslOptions(config.state.sslmode, config.state.caFile);
  let stateCredential: LiveCredential | null = null;
  if (typeof config.state.password === 'object') {
    const ref = config.state.password;
    stateCredential = ownLogins.login(
      ref.provider,
      ref.secret,
      `state password secret ${ref.secret}`,
      (user, password) =>
        checkLogin({
          ...stateEndpoint,
          user,
          password,
          ssl: stateSsl,
          application_name: 'pgrotate-resolve',
          connectionTimeoutMillis: 10_000,
        }),
    );
    try {
      await stateCredential.resolve();
    } catch (err) {
      await closeEarly();
      throw new ConfigError(`state database: cannot read its password: ${redactor.scrub(messageOf(err))}`);
    }
  }
  try {
    const state = await StateStore.open({
      connection: {
        ...stateEndpoint,
        ...(typeof config.state.password === 'string' ? { password: config.state.password } : {}),
        ssl: stateSsl,
        application_name: 'pgrotate-state',
        connectionTimeoutMillis: 10_000,
      },
      schema: config.state.schema,
      redactor,
      ...(stateCredential ? { credential: stateCredential } : {}),
    });
    return { state, stateCredential };
  } catch (err) {
    await closeEarly();
    throw err instanceof Error && err.name === 'StateStoreError'
      ? err
      : new ConfigError(redactor.scrub(messageOf(err)));
  }
}

/** Close the app: queued alerts get a bounded chance first, then (unless abandoned) every pool, within `by`. */
async function closeApp(
  { by, abandon = false }: AppCloseOptions,
  parts: {
    alerts: AlertDispatcher;
    closeTargets: () => Promise<void>;
    state: StateStore;
    providers: Map<string, SecretProvider>;
  },
): Promise<void> {
  const left = () => (by === undefined ? Number.POSITIVE_INFINITY : msUntil(by));
  // Give queued alerts (a failure just reported) a bounded chance to go out before exit.
  await parts.alerts.close(Math.min(10_000, left()));
  // Work still running here holds pool connections: ending the pools would wait for it.
  if (abandon) return;
  const closeAll = async () => {
    await parts.closeTargets();
    await parts.state.close().catch(() => undefined);
    await closeProviders(parts.providers);
  };
  if (by === undefined) await closeAll();
  else await settleWithin(closeAll(), left());
}

export type { App } from '../core/app.js';

/**
 * Open one admin connection to each of `names` (those with the admin password in the config) and
 * leave it idle in the target's pool, where the first rotation on that target picks it up. It
 * saves that rotation a login's round trips, spent while the state database connects. Never
 * fails: a target that cannot be reached is reported by the rotation that needs it, naming the
 * account, exactly as without this (a provider-held admin password is not read early either).
 * `closeTargets` closes the targets' pools without waiting on an attempt still under way.
 */
function warmAdmin(
  targets: TargetConnector,
  configured: Record<string, TargetConfig>,
  names: readonly string[],
): { settled: Promise<void>; closeTargets: () => Promise<void> } {
  const wanted = [...new Set(names)].filter((name) => {
    const target = configured[name];
    return target !== undefined && target.admin !== 'self' && 'username' in target.admin;
  });
  const settled = Promise.all(
    wanted.map((name) => targets.withAdmin(name, undefined, async () => undefined).catch(() => undefined)),
  ).then(() => undefined);
  let done = false;
  void settled.then(() => (done = true));
  const closeTargets = async () => {
    // A warm-up still trying a slow target that the command never came to use (an account
    // busy elsewhere) must not hold up the exit: that pool closes once the attempt settles.
    if (done) await targets.close();
    else void settled.then(() => targets.close());
  };
  return { settled, closeTargets };
}
