import { quoteIdent } from '../pg/quote.js';

/**
 * The startup `options` of a state connection: the given ones (if any) plus a search_path of the
 * state schema alone, with pg_temp last so no temporary table can stand in for a state table.
 * Set in the startup packet, it holds for every connection of the pool from its first statement
 * (pooled, re-made after a restart, or made with a rotated password) at no extra round trip, and
 * it wins over a search_path set for the role or database. The state statements
 * (state-statements.ts) therefore name no schema.
 */
export function withStateSearchPath(schema: string, options?: string): string {
  // The server splits `options` at white space; a backslash keeps the next character.
  const value = `${quoteIdent(schema)},pg_temp`.replace(/[\\\s]/g, (c) => `\\${c}`);
  return [options, `-c search_path=${value}`].filter(Boolean).join(' ');
}
