import { ConfigError } from '../errors.js';
import { readReferenceFile } from './reference-file.js';

// `env:NAME` and `file:/path` let a config point at a secret instead of holding it.
const ENV_REF = /^env:([A-Za-z_][A-Za-z0-9_]*)$/;
const FILE_REF = /^file:(.+)$/;

/** Render a key path as people write it: accounts[0].admin.password. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(root)' : out;
}

/**
 * Replace every `env:`/`file:` string in a parsed YAML tree with the value it names.
 * Returns the new tree and the key paths whose values came from a reference, so the caller
 * can treat them as secrets.
 */
export function resolveReferences(
  tree: unknown,
  env: NodeJS.ProcessEnv,
  path: PropertyKey[] = [],
  resolved: string[] = [],
): { value: unknown; resolvedValues: string[] } {
  const walk = (node: unknown, at: PropertyKey[]): unknown => {
    if (typeof node === 'string') return resolveOne(node, at);
    if (Array.isArray(node)) return node.map((item, i) => walk(item, [...at, i]));
    if (node && typeof node === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node)) out[k] = walk(v, [...at, k]);
      return out;
    }
    return node;
  };
  const resolveOne = (text: string, at: PropertyKey[]): string => {
    const envMatch = ENV_REF.exec(text);
    if (envMatch) {
      const name = envMatch[1] as string;
      const value = env[name];
      if (value === undefined || value === '') {
        throw new ConfigError(`${formatPath(at)}: environment variable ${name} is not set`);
      }
      resolved.push(value);
      return value;
    }
    const fileMatch = FILE_REF.exec(text);
    if (fileMatch) {
      const file = fileMatch[1] as string;
      const value = readReferenceFile(file, formatPath(at));
      resolved.push(value);
      return value;
    }
    return text;
  };
  return { value: walk(tree, path), resolvedValues: resolved };
}
