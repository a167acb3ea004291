import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import type * as Yaml from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { Redactor } from '../logging/redactor.js';
import type { ConfigSchema, PgrotateConfig } from './config-schema.js';
import { MAX_YAML_CONFIG_BYTES, readConfigBytes, yamlTooLargeError } from './config-file-limits.js';
import { formatPath, resolveReferences } from './value-reference.js';

export interface LoadedConfig {
  config: PgrotateConfig;
  /** Where it was read from, for messages. */
  source: string;
  /** Values that came from env:/file: references; the caller registers them as secrets. */
  referencedValues: string[];
}

/** Which file to read: --config, else $PGROTATE_CONFIG, else ./pgrotate.yaml. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv, cwd: string): string {
  return resolve(cwd, flag ?? env.PGROTATE_CONFIG ?? 'pgrotate.yaml');
}

// Core knows no secret store, so each function takes the build's config schema (buildConfigSchema
// with the provider types of providers/provider-registry.ts); src/app/load-config.ts binds it.

/** Read, resolve references in, and validate a config file. Throws ConfigError naming the key path. */
export function loadConfigFileWith(schema: ConfigSchema, path: string, env: NodeJS.ProcessEnv): LoadedConfig {
  return parseConfigTextWith(schema, readConfigBytes(path).toString('utf8'), env, path);
}

let yamlParse: typeof Yaml.parse | undefined;

/**
 * The YAML parser, loaded the first time a config is not JSON: loading it costs every CLI run
 * about 35 ms (bench/cli-startup-run.ts), which a JSON config need not pay. Loaded synchronously
 * (its CommonJS build, the same module `import 'yaml'` gives Node) so config loading stays sync.
 */
function parseYaml(text: string): unknown {
  yamlParse ??= (createRequire(import.meta.url)('yaml') as typeof Yaml).parse;
  return yamlParse(text);
}

/**
 * JSON is YAML, and generated configs for large fleets are often JSON: read those with
 * JSON.parse, which takes a fraction of the YAML parser's time and memory (100k accounts:
 * 0.2 s instead of 20 s, and no 800 MB peak). Anything else, or invalid JSON, goes to YAML.
 */
function parseJsonOrYaml(text: string, source: string): unknown {
  if (/^\s*\{/.test(text)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Not JSON after all (YAML flow mappings start with "{" too).
    }
  }
  // The YAML parser needs tens of times the text's size in memory: refuse a large file before it
  // starts, and point at JSON, which is read with a fraction of the memory.
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_YAML_CONFIG_BYTES) throw yamlTooLargeError(source, bytes);
  return parseYaml(text);
}

/** Validate config given as YAML text. */
export function parseConfigTextWith(
  schema: ConfigSchema,
  text: string,
  env: NodeJS.ProcessEnv,
  source = '(inline)',
): LoadedConfig {
  let raw: unknown;
  try {
    raw = parseJsonOrYaml(text, source);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${source}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${source}: the config must be a YAML mapping`);
  }
  const { value, resolvedValues } = resolveReferences(raw, env);
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    // Some messages quote the value they refuse (a duration, a target name); a value that came
    // from env:/file: is a secret and is scrubbed like everywhere else.
    const redactor = new Redactor();
    for (const v of resolvedValues) redactor.add(v);
    throw new ConfigError(
      `${source}: invalid config:\n${redactor.scrub(firstLines(describeIssues(parsed.error.issues, value), MAX_ISSUE_LINES))}`,
    );
  }
  return { config: parsed.data, source, referencedValues: resolvedValues };
}

/**
 * How many problems a config error lists: a generated fleet config with one mistake repeated (say
 * 16,000 accounts on one role) gets the first ones and a count, not a screen per account.
 */
export const MAX_ISSUE_LINES = 50;

/** The first `max` lines of `text`, then how many more there were. */
function firstLines(text: string, max: number): string {
  const lines = text.split('\n');
  if (lines.length <= max) return text;
  return [...lines.slice(0, max), `  ... and ${lines.length - max} more problems`].join('\n');
}

/** ` (account "NAME")` for a problem inside a named account whose message does not name it yet, else "". */
function accountOf(path: ReadonlyArray<PropertyKey>, message: string, raw: unknown): string {
  if (path[0] !== 'accounts' || typeof path[1] !== 'number' || path.length < 3) return '';
  const accounts = (raw as { accounts?: unknown } | undefined)?.accounts;
  const name = Array.isArray(accounts) ? (accounts[path[1]] as { name?: unknown } | undefined)?.name : undefined;
  if (typeof name !== 'string' || message.includes(`"${name}"`)) return '';
  return ` (account ${JSON.stringify(name)})`;
}

/**
 * One line per problem, each starting with the key path. Values are never echoed. With the
 * `raw` config, a bad value in an account also names the account (a fleet config is long).
 */
export function describeIssues(issues: ReadonlyArray<z.core.$ZodIssue>, raw?: unknown): string {
  const lines = new Set<string>();
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) lines.add(`  ${formatPath([...issue.path, key])}: unknown key`);
    } else if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      // Report the branch that got furthest: the deepest problem, then the fewest problems.
      const depth = (errs: ReadonlyArray<z.core.$ZodIssue>) => Math.max(0, ...errs.map((e) => e.path.length));
      const best = [...issue.errors].sort((a, b) => depth(b) - depth(a) || a.length - b.length)[0] ?? [];
      const nested = best.map((i) => ({ ...i, path: [...issue.path, ...i.path] }));
      lines.add(describeIssues(nested as z.core.$ZodIssue[], raw));
    } else {
      lines.add(`  ${formatPath(issue.path)}: ${issue.message}${accountOf(issue.path, issue.message, raw)}`);
    }
  }
  return [...lines].join('\n');
}
