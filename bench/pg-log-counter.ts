import { closeSync, openSync, readSync, statSync } from 'node:fs';

// Counts, from PostgreSQL's own server log, the new connections and the statements of chosen
// sessions in a stretch of the log: the benchmark's measured "connections and statements per
// rotation" (not what the code is believed to do). The server runs with log_connections=on,
// log_statement=all and LOG_LINE_PREFIX below, so every line names its session's user, database
// and application_name.

/** The log_line_prefix the parser understands: time, [pid], <user@database:application>. */
export const LOG_LINE_PREFIX = '%m [%p] <%u@%d:%a> ';

const LINE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[(\d+)\] <([^@>]*)@([^:>]*):([^>]*)> (\w+): {2}(.*)$/;
const AUTHORIZED = /^connection authorized: user=(\S+) database=(\S+)(?: application_name=(.*))?/;

/** Whose session a log line is, as the counter sees it. */
export interface Session {
  user: string;
  database: string;
  application: string;
}

export interface LogCounts {
  /** New connections: sessions authorized plus logins refused at authentication (each a backend and a handshake). */
  connections: number;
  /** Of those, the logins refused at authentication (a wrong password, or pg_hba.conf). */
  refusedLogins: number;
  /**
   * Of those, connections that ended before authentication without a refusal: a backend was
   * started ("connection received") and the client hung up at the password request, as
   * pgrotate's pre-flight probe of the login path does. Their log lines name no user, so they
   * are counted for everyone in the stretch of log (the bench reads a stretch in which only the
   * measured system opens connections).
   */
  unauthenticated: number;
  statements: number;
  /** Statements by their first word (SELECT, INSERT, BEGIN, ALTER …), for the README's breakdown. */
  statementsByVerb: Record<string, number>;
}

/** Count connections authorized and statements run by the sessions `wanted` accepts, in `text`. */
export function countLogLines(text: string, wanted: (s: Session) => boolean): LogCounts {
  const out: LogCounts = { connections: 0, refusedLogins: 0, unauthenticated: 0, statements: 0, statementsByVerb: {} };
  // Backends started in this stretch, and those that got further than the password request.
  const received = new Set<string>();
  const settled = new Set<string>();
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const [, pid = '', user = '', database = '', application = '', level, message = ''] = m;
    if (level === 'LOG' && message.startsWith('connection received:')) {
      received.add(pid);
      continue;
    }
    if (level === 'FATAL' || (level === 'LOG' && message.startsWith('connection authorized:'))) settled.add(pid);
    if (level === 'FATAL' && /^(?:password authentication failed|no pg_hba\.conf entry)/.test(message)) {
      // Refused before the session's application_name is applied: told apart by user and database only.
      if (wanted({ user, database, application })) {
        out.connections++;
        out.refusedLogins++;
      }
      continue;
    }
    if (level !== 'LOG') continue;
    const auth = AUTHORIZED.exec(message);
    if (auth) {
      // The prefix's %a is not set yet when the authorization line is written; the message has it.
      if (wanted({ user: auth[1] ?? '', database: auth[2] ?? '', application: (auth[3] ?? '').trim() }))
        out.connections++;
      continue;
    }
    // Simple protocol: "statement: …"; extended protocol (node-postgres with parameters): "execute <name>: …".
    const stmt = /^(?:statement|execute [^:]*): (.*)$/.exec(message);
    if (!stmt || !wanted({ user, database, application })) continue;
    out.statements++;
    const text = (stmt[1] ?? '').trimStart();
    // A driver's liveness ping is a bare comment (pgx: "-- ping").
    const verb = text.startsWith('--') ? '(comment)' : (/^(\w+)/.exec(text)?.[1] ?? '?').toUpperCase();
    out.statementsByVerb[verb] = (out.statementsByVerb[verb] ?? 0) + 1;
  }
  for (const pid of received) if (!settled.has(pid)) out.unauthenticated++;
  out.connections += out.unauthenticated;
  return out;
}

/** The log file's current size: a mark to read from later. */
export function logMark(file: string): number {
  return statSync(file).size;
}

/** The text written to `file` between two marks. */
export function logSince(file: string, from: number, to = logMark(file)): string {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(Math.max(0, to - from));
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, from + off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
