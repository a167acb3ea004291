import type { AccountConfig } from '../config/config-schema.js';
import { PgrotateError, ProviderError, messageOf } from '../errors.js';
import type { KeptSecretKeys, SecretProvider, SecretValue } from '../provider/secret-provider.js';
import { accountError } from './account-error.js';
import { type SecretTemplate, combinedSecretTemplate, usesPassword } from '../provider/secret-template.js';
import { keptSecretKeys } from './kept-secret-keys.js';
import type { RotationEngineDeps } from './rotation-deps.js';

/**
 * The engine's dependencies with the calls every step shares: provider operations whose
 * failures name the account, the current and pending values, pgrotate's own login.
 */
export class RotationIo {
  constructor(readonly deps: RotationEngineDeps) {}

  /** Run a provider operation; failures become ProviderErrors naming the account, secret, provider and target. */
  async providerCall<T>(account: AccountConfig, what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const detail = this.deps.redactor.scrub(messageOf(err));
      throw accountError(
        ProviderError,
        account,
        `account ${account.name}: could not ${what} secret ${account.secret} in provider ${account.provider}: ${detail} (target ${account.target})`,
        { secret: account.secret, cause: err },
      );
    }
  }

  /** The provider's current value of the account's secret (null: none). */
  readCurrent(account: AccountConfig, provider: SecretProvider): Promise<SecretValue | null> {
    return this.providerCall(account, 'read the current value of', () => provider.getCurrent(account.secret));
  }

  /** The provider's pending value of the account's secret (null: none). */
  readPending(account: AccountConfig, provider: SecretProvider): Promise<SecretValue | null> {
    return this.providerCall(account, 'read the pending value of', () => provider.getPending(account.secret));
  }

  /**
   * The keys pgrotate does not own in `current` and does not render from the account's
   * secretTemplate (those are written anew), refused when one holds its password (kept-secret-keys.ts).
   */
  keptKeys(account: AccountConfig, current: SecretValue | null): KeptSecretKeys | null {
    const where = { account: account.name, target: account.target, provider: account.provider, secret: account.secret };
    return keptSecretKeys(current, where, new Set(Object.keys(this.template(account)))) ?? null;
  }

  /** The account's secretTemplate: defaults.secretTemplate with the account's own map on top. */
  template(account: AccountConfig): SecretTemplate {
    return combinedSecretTemplate(this.deps.defaults.secretTemplate, account.secretTemplate);
  }

  /**
   * Redact `value`'s password and its rendered template keys that insert it (a DATABASE_URL is
   * as secret as the password it holds; a `{host}:{port}` key is not, and stays readable in logs).
   */
  redact(account: AccountConfig, value: SecretValue | null | undefined): void {
    if (!value) return;
    this.deps.redactor.add(value.password);
    const extra = value.extra;
    if (!extra) return;
    for (const [key, text] of Object.entries(this.template(account))) {
      const rendered = Object.hasOwn(extra, key) ? extra[key] : undefined;
      if (typeof rendered === 'string' && usesPassword(text)) this.deps.redactor.add(rendered);
    }
  }

  /** PostgreSQL now accepts `password` for `role`; if that is one of pgrotate's own logins, use it from now on. */
  followOwnLogin(account: AccountConfig, role: string, password: string): void {
    const own = this.deps.ownLogin?.(account);
    if (own && own.username === role) own.set(password);
  }

  /** Any thrown value as a PgrotateError naming the account, its message redacted. */
  asPgrotateError(err: unknown, account: AccountConfig): PgrotateError {
    if (err instanceof PgrotateError) {
      const msg = this.deps.redactor.scrub(err.message);
      if (msg !== err.message) err.message = msg;
      return err;
    }
    const message = `account ${account.name} (target ${account.target}): ${this.deps.redactor.scrub(messageOf(err))}`;
    return accountError(PgrotateError, account, message, { cause: err });
  }
}
