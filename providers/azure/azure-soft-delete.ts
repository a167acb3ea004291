import type { SecretClient, SetSecretOptions } from '@azure/keyvault-secrets';
import type { ProviderError } from '../../src/core/errors.js';
import { azureStatusOf, type AzureSecretOperation } from './azure-error.js';

// Soft delete in Azure Key Vault: a deleted secret lingers as "deleted but recoverable", and
// Azure refuses to set a secret of that name (409 Conflict). A write then purges the deleted one
// (or, where purging is not allowed, recovers it) and tries again, so a leftover never blocks a
// rotation.

/** What the writer needs from its provider: the SDK clients and the provider's error wording. */
export interface AzureSoftDeleteDeps {
  client: () => SecretClient;
  /** A client that never retries (a purge refusal cannot change; see the provider's purgeClient). */
  purgeClient: () => SecretClient;
  failure: (what: string, secret: string, err: unknown, operation: AzureSecretOperation) => ProviderError;
  /** How long to keep retrying a name that is still being deleted or purged (409). */
  conflictTimeoutMs: number;
}

/** setSecret over names that may be soft-deleted; one per provider (it remembers a refused purge). */
export class AzureSoftDeleteWriter {
  /**
   * Set once the vault has refused a purge (purge protection, or an emulator's 500): from then on a
   * soft-deleted companion is recovered straight away instead of paying a refused purge per stage.
   */
  private purgeRefused = false;

  constructor(private readonly deps: AzureSoftDeleteDeps) {}

  /**
   * setSecret, handling a name that is soft-deleted (409 Conflict): `prefer` says whether to purge
   * the deleted secret (the pending companion: nothing in it is worth keeping; recovery is the
   * fallback) or to recover it (the application's secret: its versions are history).
   */
  async write(
    name: string,
    text: string,
    options: SetSecretOptions,
    secret: string,
    prefer: 'purge' | 'recover',
  ): Promise<void> {
    const deadline = Date.now() + this.deps.conflictTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.deps.client().setSecret(name, text, options);
        return;
      } catch (err) {
        if (azureStatusOf(err) !== 409 || Date.now() > deadline)
          throw this.deps.failure(name === secret ? 'write' : 'write the pending value of', secret, err, 'set');
      }
      // Deleted but not purged, or a deletion/purge still in progress: clear the way and retry,
      // at once when the way is clear, after a back-off while the name is still in transition.
      if ((await this.clearDeleted(name, secret, prefer)) === 'in-transition')
        await sleep(Math.min(2_000, 100 * 2 ** attempt));
    }
  }

  /**
   * Purge or recover a soft-deleted secret. A name still in transition (404: not in the deleted
   * list yet; 409: deletion in progress, or purge refused under purge protection) is left for the
   * caller's retry after the other step is tried, so purge protection falls back to recovery.
   */
  private async clearDeleted(
    name: string,
    secret: string,
    prefer: 'purge' | 'recover',
  ): Promise<'cleared' | 'in-transition'> {
    // The application's own secret is never purged: its versions are the credential's history.
    const steps: AzureSecretOperation[] = prefer === 'purge' && !this.purgeRefused ? ['purge', 'recover'] : ['recover'];
    let lastError: unknown = null;
    let lastStep: AzureSecretOperation = 'recover';
    let inTransition = false;
    for (const step of steps) {
      try {
        if (step === 'purge') await this.purge(name);
        else await this.recover(name);
        return 'cleared';
      } catch (err) {
        const status = azureStatusOf(err);
        if (status === 404 || status === 409) inTransition = true;
        else {
          // A refusal (purge protection: 403; 400/405; Lowkey Vault's 500) will not change; a
          // throttled or unavailable vault (429, 502-504) may purge next time.
          if (step === 'purge' && [400, 403, 405, 500].includes(status ?? 0)) this.purgeRefused = true;
          lastError = err;
          lastStep = step;
        }
      }
    }
    if (inTransition) return 'in-transition';
    throw this.deps.failure(`${lastStep} the soft-deleted secret ${name} of`, secret, lastError, lastStep);
  }

  private async purge(name: string): Promise<void> {
    await this.deps.purgeClient().purgeDeletedSecret(name);
  }

  private async recover(name: string): Promise<void> {
    const poller = await this.deps.client().beginRecoverDeletedSecret(name, { intervalInMs: 250 });
    await poller.pollUntilDone();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
