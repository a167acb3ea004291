/**
 * What a login attempt proved. `proof` says how an ok was established: a session, or the server's
 * refusal of a *later* check that PostgreSQL only makes once the password has been accepted.
 * `refusal` tells the server's refusals apart: `password` (28P01: the password exchange ran and
 * failed) and `host` (28000: pg_hba.conf refused this role from this host, or asked for a method
 * other than a password) are answers; a `fault` (unreachable, timeout, server full) is not.
 */
export type LoginResult =
  | { ok: true; proof: 'session' | 'role-connection-limit' | 'database-connection-limit'; message?: string }
  | { ok: false; authFailure: boolean; refusal: 'password' | 'host' | 'fault'; message: string };
