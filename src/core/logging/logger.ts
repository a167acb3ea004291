import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';
import type { Redactor } from './redactor.js';

/** The logger interface the core depends on (pino's, narrowed). */
export type Logger = Pick<PinoLogger, 'info' | 'warn' | 'error' | 'debug' | 'child'>;

export interface LoggerOptions {
  level?: string;
  /** Where JSON lines go; stderr by default so stdout stays for command output. */
  destination?: DestinationStream;
}

/**
 * Structured JSON logger whose every line is scrubbed of known secrets before it is written,
 * with secret-named keys masked as a second line of defence.
 */
export function createLogger(redactor: Redactor, opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? process.env.PGROTATE_LOG_LEVEL ?? 'info',
      base: { app: 'pgrotate' },
      redact: {
        paths: [
          'password',
          '*.password',
          '*.*.password',
          'token',
          '*.token',
          'secret.password',
          'verifier',
          '*.verifier',
        ],
        censor: '[REDACTED]',
      },
      hooks: {
        streamWrite: (line: string) => redactor.scrub(line),
      },
      serializers: {
        err: (err: unknown) => redactor.scrubValue(err),
      },
      formatters: {
        // Every field, at any depth: secret-named keys masked, Buffers reduced to their size,
        // error causes kept and scrubbed. The line scrubber below still catches the rest.
        log: (obj: Record<string, unknown>) => redactor.scrubValue(obj) as Record<string, unknown>,
      },
    },
    opts.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}
