import { OWNED_SECRET_KEYS } from '../provider/secret-provider.js';
import { TemplateSyntaxError, parseTemplate } from '../provider/secret-template.js';
import type { AccountConfig } from './account-config-schema.js';

// secretTemplate is checked at load, so a typo in a placeholder or a key that would overwrite a
// field pgrotate writes itself is an error naming the account and key, before any rotation runs.

/** One problem, at its key path. */
export interface SecretTemplateIssue {
  path: Array<string | number>;
  message: string;
}

const OWNED: ReadonlySet<string> = new Set(OWNED_SECRET_KEYS);
/** A key of the stored secret: an env-var-like name (it is printed in errors and read by applications). */
const KEY_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;

/** Problems of the defaults' secretTemplate and of each account's own. */
export function secretTemplateIssues(
  defaults: Record<string, string> | undefined,
  accounts: AccountConfig[],
): SecretTemplateIssue[] {
  const issues: SecretTemplateIssue[] = [];
  for (const [key, text] of Object.entries(defaults ?? {})) {
    const problem = keyProblem(key, text);
    if (problem)
      issues.push({
        path: ['defaults', 'secretTemplate', key],
        message: `defaults.secretTemplate key "${key}": ${problem}`,
      });
  }
  accounts.forEach((account, i) => {
    for (const [key, text] of Object.entries(account.secretTemplate ?? {})) {
      const problem = keyProblem(key, text);
      if (problem)
        issues.push({
          path: ['accounts', i, 'secretTemplate', key],
          message: `account "${account.name}": secretTemplate key "${key}": ${problem}`,
        });
    }
  });
  return issues;
}

/** Why `key: text` is not a usable template entry, or null. */
function keyProblem(key: string, text: string | null): string | null {
  if (!KEY_NAME.test(key))
    return 'is not a key name (a letter or "_", then letters, digits, "_", "." or "-"; at most 128)';
  if (OWNED.has(key))
    return `is a key pgrotate writes itself (${OWNED_SECRET_KEYS.join(', ')}); give the rendered value another name`;
  if (text === null) return null;
  try {
    parseTemplate(text);
    return null;
  } catch (err) {
    if (err instanceof TemplateSyntaxError) return err.message;
    throw err;
  }
}
