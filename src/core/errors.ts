// Named error classes. Every message passes through the redactor before it reaches a person,
// so constructing an error from a library's message can never carry a password out.

/** Exit codes used by the CLI; documented in the README. */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  busy: 3,
} as const;

export interface PgrotateErrorOptions {
  account?: string;
  target?: string;
  cause?: unknown;
  /** Mark this instance permanent even if its class is not (a provider's HTTP 403). */
  permanent?: boolean;
}

/**
 * Base class: a message meant for people, plus the account/target it concerns. `permanent`
 * errors will not fix themselves (a missing role, a missing GRANT, a refused permission): retrying
 * them only delays the report, so jobs fail at once. Everything else is treated as transient.
 */
export class PgrotateError extends Error {
  readonly account: string | undefined;
  readonly target: string | undefined;
  readonly exitCode: number = ExitCode.failed;
  readonly permanent: boolean;
  constructor(message: string, opts: PgrotateErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.account = opts.account;
    this.target = opts.target;
    this.permanent = opts.permanent ?? (new.target as { permanentByDefault?: boolean }).permanentByDefault === true;
  }
}

/** The configuration file is missing, malformed, or refers to something that does not exist. */
export class ConfigError extends PgrotateError {
  /** Every instance is permanent (read by the PgrotateError constructor). */
  static readonly permanentByDefault = true;
  override readonly exitCode = ExitCode.usage;
}

/** The command line is wrong: a missing or extra argument, an invalid option value. */
export class UsageError extends PgrotateError {
  override readonly exitCode = ExitCode.usage;
}

/** `offboard` named a principal that no account's exposedTo and no group lists (a typo, an empty name). */
export class UnknownPrincipalError extends PgrotateError {
  override readonly exitCode = ExitCode.usage;
  constructor(readonly principal: string) {
    super(
      principal.trim() === ''
        ? 'offboard: the principal is empty'
        : `offboard: unknown principal ${JSON.stringify(principal)}: no account's exposedTo and no group lists it ` +
            `(a typo? for someone who had no access, pass --allow-none, or "allowNone": true in the API)`,
    );
  }
}

/** A command named an account that is not in the configuration. */
export class UnknownAccountError extends PgrotateError {
  /** Every instance is permanent (read by the PgrotateError constructor). */
  static readonly permanentByDefault = true;
  override readonly exitCode = ExitCode.usage;
}

/** The role to rotate does not exist on the target. */
export class RoleNotFoundError extends PgrotateError {
  /** Every instance is permanent (read by the PgrotateError constructor). */
  static readonly permanentByDefault = true;
}

/** The role is a superuser and the account does not set allowSuperuser. */
export class SuperuserRefusedError extends PgrotateError {
  /** Every instance is permanent (read by the PgrotateError constructor). */
  static readonly permanentByDefault = true;
}

/** The role is NOLOGIN, so a password on it would never be used. */
export class RoleCannotLoginError extends PgrotateError {
  /** Every instance is permanent (read by the PgrotateError constructor). */
  static readonly permanentByDefault = true;
}

/** The role's VALID UNTIL has passed, so PostgreSQL refuses every password for it. */
export class RoleExpiredError extends PgrotateError {
  /** A person must extend it or opt in to renewValidUntil (read by the PgrotateError constructor). */
  static readonly permanentByDefault = true;
}

/** pgrotate's host cannot reach a password check for the role (pg_hba.conf), so verify could prove nothing. */
export class LoginPathClosedError extends PgrotateError {
  /** A person must change pg_hba.conf (read by the PgrotateError constructor). */
  static readonly permanentByDefault = true;
}

/** The admin login lacks the privilege to change the role's password. */
export class AdminPrivilegeError extends PgrotateError {
  /** Every instance is permanent (read by the PgrotateError constructor). */
  static readonly permanentByDefault = true;
}

/** `admin: self`: the role's stored credential does not log in, so it cannot set its own password; an admin must recover it once. */
export class SelfLoginRefusedError extends PgrotateError {
  /** A person must act (read by the PgrotateError constructor). */
  static readonly permanentByDefault = true;
}

/** A twin login (createTwin) cannot be created or taken as the twin: what the first role holds, or a differing second role. */
export class TwinRoleError extends PgrotateError {
  /** A person must move objects or fix a role (read by the PgrotateError constructor). */
  static readonly permanentByDefault = true;
}

/** The target database could not be reached or refused the admin login. */
export class TargetUnreachableError extends PgrotateError {}

/** A PgBouncer in front of a target could not be read, written, reached or reloaded. */
export class PgbouncerError extends PgrotateError {}

/** A secret store operation failed. */
export class ProviderError extends PgrotateError {
  readonly secret: string | undefined;
  constructor(message: string, opts: PgrotateErrorOptions & { secret?: string } = {}) {
    super(message, opts);
    this.secret = opts.secret;
  }
}

/** The secret in the store does not have the documented shape. */
export class SecretFormatError extends ProviderError {
  /** Every instance is permanent (read by the PgrotateError constructor). */
  static readonly permanentByDefault = true;
}

/** Another process holds the account's rotation fence. */
export class RotationInProgressError extends PgrotateError {
  override readonly exitCode = ExitCode.busy;
}

/** This process lost the fence (its state connection died, another process took over). */
export class FenceLostError extends PgrotateError {}

/** The new credential did not log in. */
export class VerifyFailedError extends PgrotateError {}

/** The state database could not be reached or migrated. */
export class StateStoreError extends PgrotateError {}

/**
 * Will retrying not help? True when the error, or any error in its `cause` chain (a provider's
 * 403 wrapped by the engine), is permanent. Unknown errors count as transient.
 */
export function isPermanentError(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof PgrotateError && e.permanent) return true;
  }
  return false;
}

/** Message of any thrown value, for wrapping; callers still redact it. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
