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
  // The key path is built only for an error message, and a subtree without references is
  // returned as it is: a 100,000-account config would otherwise be copied whole, with a path
  // array per value, and that garbage alone raised a worker's start-up peak by about 40 MB.
  const walk = (node: unknown, at: () => PropertyKey[]): unknown => {
    if (typeof node === 'string')
      return node.startsWith('env:') || node.startsWith('file:') ? resolveOne(node, at()) : node;
    if (Array.isArray(node)) {
      let out: unknown[] = node;
      node.forEach((item: unknown, i) => {
        const v = walk(item, () => [...at(), i]);
        if (v === item) return;
        if (out === node) out = [...node];
        out[i] = v;
      });
      return out;
    }
    if (node && typeof node === 'object') {
      let out = node as Record<string, unknown>;
      for (const [k, item] of Object.entries(node)) {
        const v = walk(item, () => [...at(), k]);
        if (v === item) continue;
        if (out === node) out = { ...node };
        out[k] = v;
      }
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
  return { value: walk(tree, () => path), resolvedValues: resolved };
}
