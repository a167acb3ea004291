// Identifier and literal quoting for the few statements (ALTER ROLE) that cannot take bind
// parameters. Both refuse NUL, which PostgreSQL cannot store and some drivers truncate at.

/** Quote an identifier the way PostgreSQL's quote_ident does: always, doubling inner quotes. */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new Error('identifier contains a NUL character');
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quote a string literal with standard_conforming_strings semantics (E'' is never used). */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('literal contains a NUL character');
  return `'${value.replace(/'/g, "''")}'`;
}
