// `secretTemplate:` renders extra keys of the stored secret (a DATABASE_URL, a JDBC_URL) from the
// credential at every rotation. Placeholders are `{username}`, `{password}`, `{host}`, `{port}` and
// `{dbname}`; `{{` and `}}` are literal braces. A value is encoded for the place it sits in:
// a template that starts with `scheme://` (or `jdbc:scheme://`) is a URL, and each placeholder is
// percent-encoded for its part of it (userinfo, host, path, query, fragment), judged from the
// template's own text, never from the values (an encoded value cannot move a boundary). A template
// that is not a URL gets the values as they are.

/** The placeholders a template may use. */
export const TEMPLATE_PLACEHOLDERS = ['username', 'password', 'host', 'port', 'dbname'] as const;
export type TemplatePlaceholder = (typeof TEMPLATE_PLACEHOLDERS)[number];

/** What a template is rendered from: the fields of the secret value being written. */
export type TemplateValues = Record<TemplatePlaceholder, string | number>;

/** A key's template (key → template text), after defaults and the account's map are combined. */
export type SecretTemplate = Record<string, string>;

/** Where a placeholder sits, which decides its encoding. */
export type TemplatePosition = 'raw' | 'userinfo' | 'host' | 'port' | 'path' | 'query' | 'fragment';

type Segment = { text: string } | { name: TemplatePlaceholder; position: TemplatePosition };

const KNOWN: ReadonlySet<string> = new Set(TEMPLATE_PLACEHOLDERS);
const URL_START = /^[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z][A-Za-z0-9+.-]*:)?\/\//;

/** A template that cannot be rendered; the message names the problem, never a value. */
export class TemplateSyntaxError extends Error {
  override name = 'TemplateSyntaxError';
}

/** Split `template` into literal text and placeholders, or throw a TemplateSyntaxError. */
function tokens(template: string): Array<{ text: string } | { name: TemplatePlaceholder }> {
  const out: Array<{ text: string } | { name: TemplatePlaceholder }> = [];
  let text = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if ((c === '{' || c === '}') && template[i + 1] === c) {
      text += c;
      i++;
      continue;
    }
    if (c === '}') throw new TemplateSyntaxError(`a lone "}" at character ${i + 1} (write "}}" for a literal brace)`);
    if (c !== '{') {
      text += c;
      continue;
    }
    const end = template.indexOf('}', i + 1);
    if (end < 0)
      throw new TemplateSyntaxError(`an unclosed "{" at character ${i + 1} (write "{{" for a literal brace)`);
    const name = template.slice(i + 1, end);
    if (!KNOWN.has(name))
      throw new TemplateSyntaxError(
        `unknown placeholder {${name.length > 40 ? `${name.slice(0, 40)}…` : name}} (known: ${TEMPLATE_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')})`,
      );
    if (text) out.push({ text });
    text = '';
    out.push({ name: name as TemplatePlaceholder });
    i = end;
  }
  if (text) out.push({ text });
  return out;
}

/**
 * Parse a template into segments, each placeholder with its position, or throw a
 * TemplateSyntaxError (unknown placeholder, stray brace).
 */
export function parseTemplate(template: string): Segment[] {
  const parts = tokens(template);
  const first = parts[0];
  const start = first && 'text' in first ? URL_START.exec(first.text) : null;
  if (!start) return parts.map((p) => ('text' in p ? p : { ...p, position: 'raw' as const }));
  // Walk the literal text as a URL parser would: authority (userinfo@host:port), then path, query, fragment.
  const literal = parts.map((p) => ('text' in p ? p.text : '')).join('');
  const authorityEnd = ((): number => {
    const at = literal.slice(start[0].length).search(/[/?#]/);
    return at < 0 ? literal.length : start[0].length + at;
  })();
  const userinfoEnd = literal.lastIndexOf('@', authorityEnd - 1);
  let offset = 0;
  return parts.map((p) => {
    if ('text' in p) {
      offset += p.text.length;
      return p;
    }
    return { ...p, position: urlPosition(literal, offset, start[0].length, authorityEnd, userinfoEnd) };
  });
}

/** The URL part at `offset` of the template's literal text. */
function urlPosition(
  literal: string,
  offset: number,
  authorityStart: number,
  authorityEnd: number,
  userinfoEnd: number,
): TemplatePosition {
  if (offset < authorityStart) return 'raw';
  if (offset <= authorityEnd) {
    if (userinfoEnd >= authorityStart && offset <= userinfoEnd) return 'userinfo';
    // After the last ":" of the host part (outside an IPv6 literal's brackets): the port.
    const hostPart = literal.slice(userinfoEnd >= authorityStart ? userinfoEnd + 1 : authorityStart, offset);
    return /:[^\]]*$/.test(hostPart) ? 'port' : 'host';
  }
  const query = literal.indexOf('?', authorityEnd);
  const fragment = literal.indexOf('#', authorityEnd);
  if (fragment >= 0 && offset > fragment) return 'fragment';
  if (query >= 0 && offset > query && (fragment < 0 || query < fragment)) return 'query';
  return 'path';
}

/** `value` encoded for `position` (RFC 3986: every character outside the unreserved set is %XX). */
export function encodeFor(position: TemplatePosition, value: string): string {
  if (position === 'raw') return value;
  // An IPv6 address in a host position needs brackets, and its colons stay as they are.
  if (position === 'host' && /^[0-9A-Fa-f:.]+$/.test(value) && value.includes(':')) return `[${value}]`;
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Render one template with `values`, each placeholder encoded for its position. */
export function renderTemplate(template: string, values: TemplateValues): string {
  return parseTemplate(template)
    .map((s) => ('text' in s ? s.text : encodeFor(s.position, String(values[s.name]))))
    .join('');
}

/** Does this template insert the password (so its rendered value is a secret)? */
export function usesPassword(template: string): boolean {
  return tokens(template).some((t) => 'name' in t && t.name === 'password');
}

/** Every key of `template` rendered with `values`. */
export function renderSecretTemplate(template: SecretTemplate, values: TemplateValues): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, text] of Object.entries(template))
    Object.defineProperty(out, key, {
      value: renderTemplate(text, values),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return out;
}

/**
 * The template an account renders: the defaults' keys, then the account's own on top (a key in
 * both takes the account's text; an account's key set to null drops that default key).
 */
export function combinedSecretTemplate(
  defaults: Record<string, string> | undefined,
  account: Record<string, string | null> | undefined,
): SecretTemplate {
  const out: SecretTemplate = {};
  const set = (key: string, v: string) =>
    Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
  for (const [key, v] of Object.entries(defaults ?? {})) set(key, v);
  for (const [key, v] of Object.entries(account ?? {})) {
    if (v === null) delete out[key];
    else set(key, v);
  }
  return out;
}
