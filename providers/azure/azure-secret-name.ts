// Azure Key Vault secret names: 1-127 characters, ASCII letters, digits and dashes. pgrotate keeps
// the pending credential in a companion secret named `<secret><PENDING_SUFFIX>`, so the account's
// own name must leave room for the suffix.

export const AZURE_PENDING_SUFFIX = '-pgrotate-pending';
const AZURE_NAME = /^[0-9A-Za-z-]{1,127}$/;
const MAX_LENGTH = 127;

/** Name of the companion secret that holds `secret`'s pending credential. */
export function azurePendingName(secret: string): string {
  return `${secret}${AZURE_PENDING_SUFFIX}`;
}

/**
 * Why `secret` cannot be used as an Azure Key Vault secret name, or null when it can.
 * `withPending`: the name must also leave room for the pending companion (rotated secrets).
 */
export function azureSecretNameProblem(secret: string, withPending: boolean): string | null {
  if (!AZURE_NAME.test(secret)) {
    return `"${secret}" is not a valid Azure Key Vault secret name (1-127 characters: letters, digits and "-")`;
  }
  if (withPending && azurePendingName(secret).length > MAX_LENGTH) {
    return `"${secret}" is too long for Azure Key Vault: its pending companion "${azurePendingName(secret)}" would exceed 127 characters (use at most ${MAX_LENGTH - AZURE_PENDING_SUFFIX.length})`;
  }
  return null;
}
