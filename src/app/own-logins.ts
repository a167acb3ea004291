import type { Redactor } from '../core/logging/redactor.js';
import { LiveCredential, providerSource, type CredentialSource } from '../core/pg/live-credential.js';
import type { SecretProvider } from '../core/provider/secret-provider.js';

/**
 * pgrotate's own logins whose passwords come from a provider, by provider and secret: an account
 * with the same secret rotates that login, and this process follows at once.
 */
export class OwnLogins {
  private readonly byKey = new Map<string, LiveCredential>();

  constructor(
    private readonly provider: (name: string) => SecretProvider,
    private readonly redactor: Redactor,
  ) {}

  /** The one live credential of `secret` in `providerName` (made on first use, with `check` to tell a stale value). */
  login(providerName: string, secret: string, label: string, check: CredentialSource['check']): LiveCredential {
    const key = keyOf(providerName, secret);
    let credential = this.byKey.get(key);
    if (!credential) {
      credential = new LiveCredential(
        providerSource(this.provider(providerName), secret, label, check),
        this.redactor,
        label,
      );
      this.byKey.set(key, credential);
    }
    return credential;
  }

  /** The own login stored in `secret` of `providerName`, if pgrotate logs in with it. */
  find(providerName: string, secret: string): LiveCredential | null {
    return this.byKey.get(keyOf(providerName, secret)) ?? null;
  }
}

function keyOf(providerName: string, secret: string): string {
  return `${providerName}\u0000${secret}`;
}
