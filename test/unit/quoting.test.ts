import { describe, expect, it } from 'vitest';
import { quoteIdent, quoteLiteral } from '../../src/core/pg/quote.js';

describe('SQL quoting', () => {
  it('always double-quotes identifiers and doubles inner quotes', () => {
    expect(quoteIdent('simple')).toBe('"simple"');
    expect(quoteIdent('"; DROP ROLE x; --')).toBe('"""; DROP ROLE x; --"');
    expect(quoteIdent('ünï cødé')).toBe('"ünï cødé"');
  });
  it('quotes literals and refuses NUL', () => {
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(() => quoteIdent('a\0b')).toThrow(/NUL/);
    expect(() => quoteLiteral('a\0b')).toThrow(/NUL/);
  });
});
