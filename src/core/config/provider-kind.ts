import type { z } from 'zod';

// Core parses the config but knows no secret store: each store (a folder under providers/)
// describes its config entry with a ProviderConfigKind, and the composition root (src/app) hands
// the list to the config schema. A new store is then a folder and one registry line, not a change
// across core.

/** A `providers:` entry as core sees it: the store's type and its own settings. */
export interface ProviderConfig {
  type: string;
  [setting: string]: unknown;
}

/** What parsing and checking a config needs to know about one provider type. */
export interface ProviderConfigKind<C extends ProviderConfig = ProviderConfig> {
  /** The value of `type:` that selects this store. */
  type: string;
  /** The entry's schema: a strict object whose `type` is the literal above. */
  schema: z.core.$ZodTypeDiscriminable & z.ZodType<C>;
  /**
   * Why `secret` is not a usable secret name in this store, or null when it is (a store without
   * naming rules leaves this out). `rotated`: an account's secret, which also needs room for
   * its pending companion; false for a secret pgrotate only reads (an admin login).
   */
  secretNameProblem?(config: C, secret: string, rotated: boolean): string | null;
}

/** The provider types a build knows, as the config schema consumes them. */
export type ProviderConfigKinds = readonly ProviderConfigKind[];
