import { buildConfigSchema } from '../core/config/config-schema.js';
import { loadConfigFileWith, parseConfigTextWith, type LoadedConfig } from '../core/config/load-config.js';
import { providerConfigKinds } from '../../providers/provider-registry.js';

// The config as this build reads it: core's schema with every provider type the registry knows.

export { configPath, type LoadedConfig } from '../core/config/load-config.js';

/** The config file's schema, with this build's provider types. */
export const configSchema = buildConfigSchema(providerConfigKinds);

/** Read, resolve references in, and validate a config file. Throws ConfigError naming the key path. */
export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  return loadConfigFileWith(configSchema, path, env);
}

/** Validate config given as YAML text. */
export function parseConfigText(text: string, env: NodeJS.ProcessEnv, source = '(inline)'): LoadedConfig {
  return parseConfigTextWith(configSchema, text, env, source);
}
