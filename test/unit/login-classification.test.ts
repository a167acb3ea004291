import { describe, expect, it } from 'vitest';
import { classifyLoginError } from '../../src/core/pg/target-connector.js';

// What a refused login proves: PostgreSQL checks the password before the per-role and
// per-database connection limits, and pg_hba.conf before the password.

function pgError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

describe('classifyLoginError', () => {
  it('a per-role or per-database connection limit after the password exchange is proof', () => {
    const role = 'too many connections for role "app"';
    expect(classifyLoginError(pgError('53300', role), role)).toEqual({
      ok: true,
      proof: 'role-connection-limit',
      message: role,
    });
    const db = 'too many connections for database "app"';
    expect(classifyLoginError(pgError('53300', db), db)).toMatchObject({
      ok: true,
      proof: 'database-connection-limit',
    });
  });

  it('max_connections is checked before authentication: a fault, not proof', () => {
    const m = 'sorry, too many clients already';
    expect(classifyLoginError(pgError('53300', m), m)).toMatchObject({
      ok: false,
      refusal: 'fault',
      authFailure: false,
    });
  });

  it('28P01 is a password refusal, 28000 a host/method refusal, anything else a fault', () => {
    expect(classifyLoginError(pgError('28P01', 'password authentication failed'), 'x')).toMatchObject({
      ok: false,
      refusal: 'password',
      authFailure: true,
    });
    expect(classifyLoginError(pgError('28000', 'pg_hba.conf rejects connection'), 'x')).toMatchObject({
      ok: false,
      refusal: 'host',
      authFailure: true,
    });
    expect(classifyLoginError(new Error('connect ECONNREFUSED'), 'x')).toMatchObject({
      ok: false,
      refusal: 'fault',
      authFailure: false,
    });
  });
});
