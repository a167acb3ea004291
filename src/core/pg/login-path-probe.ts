import { randomBytes } from 'node:crypto';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { messageOf } from '../errors.js';
import { sslOptions, type Endpoint } from './connection-options.js';

// The pre-flight question "would a password login as this role from here have its password
// checked?" is answered by the server's first reply to a StartupMessage, before any password is
// sent: the postmaster's child matches pg_hba.conf as soon as it has read the startup packet, so
// the reply is an authentication request (SCRAM, MD5: open), AuthenticationOk (trust: a verify
// login from here could prove nothing) or an ErrorResponse (28000: reject, or no line for this
// host). Hanging up at the password prompt costs no PBKDF2 on either side, and PostgreSQL logs
// nothing for it (ClientAuthentication treats EOF at the prompt as silent, since psql does it).
//
// The one exception is a cleartext password request: pg_hba methods `password`, `ldap`, `pam`
// and `radius` all send it, and only `password` checks pg_authid, so the verify login could
// prove a rotated password only there. The probe then answers with a random wrong password on
// the same connection, as the whole probe did before: 28P01 means pg_authid was checked (open),
// 28000 is the external method's refusal (refused). Only that rare setup costs a failed login.
//
// The connection takes the same path as node-postgres's verify login (same host, port, database,
// the SSLRequest and TLS options of the sslmode, the certificate checked against the host), so
// both match the same pg_hba.conf line (hostssl / hostnossl). Neither requests GSS encryption,
// so `hostgssenc` lines match neither.

/** What the pre-flight's probe of the login path found (see probeLoginPathOf). */
export type LoginPathProbe =
  { open: true } | { open: false; reason: 'host-refused' | 'no-password-needed' | 'fault'; message: string };

const SSL_REQUEST_CODE = 80877103;
const PROTOCOL_3_0 = 196608;
/** An authentication request or error before login is a few hundred bytes; more is not PostgreSQL. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** How long a graceful hang-up may take before the socket is destroyed (never awaited). */
const LINGER_MS = 2000;

const AUTH_OK = 0;
const AUTH_CLEARTEXT = 3;
const AUTH_MD5 = 5;
const AUTH_SASL = 10;
/** Authentication requests that ask for something other than a password, by their code. */
const OTHER_METHODS: Record<number, string> = { 2: 'Kerberos V5', 6: 'SCM credential', 7: 'GSSAPI', 9: 'SSPI' };

/** Options of one probe; the defaults are the pre-flight's. */
export interface ProbeOptions {
  applicationName?: string;
  /** Deadline for the whole probe (connect, TLS, first answer); default the endpoint's connect timeout. */
  timeoutMs?: number;
}

function fault(message: string): LoginPathProbe {
  return { open: false, reason: 'fault', message };
}

function int32Message(code: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(code, 4);
  return b;
}

/** A StartupMessage (protocol 3.0) with `params` as name/value pairs. */
function startupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.from(`${Object.entries(params).flat().join('\0')}\0\0`, 'utf8');
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(PROTOCOL_3_0, 4);
  return Buffer.concat([head, body]);
}

function passwordMessage(password: string): Buffer {
  const body = Buffer.from(`${password}\0`, 'utf8');
  const head = Buffer.alloc(5);
  head.write('p', 0, 'latin1');
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

/** The fields of an ErrorResponse body by their one-letter code (C: SQLSTATE, M: message). */
function errorFields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const end = body.indexOf(0, i + 1);
    if (end < 0) break;
    out[String.fromCharCode(body[i] as number)] = body.subarray(i + 1, end).toString('utf8');
    i = end + 1;
  }
  return out;
}

/** The NUL-terminated names of an AuthenticationSASL body (after its 4-byte code). */
function saslMechanisms(body: Buffer): string[] {
  return body
    .subarray(4)
    .toString('utf8')
    .split('\0')
    .filter((m) => m !== '');
}

/** Close `s` with a FIN (and TLS close_notify) so the server sees a client leaving at the prompt, not a reset. */
function hangUp(s: Socket, raw: Socket, graceful: boolean): void {
  if (!graceful) {
    s.destroy();
    raw.destroy();
    return;
  }
  const timer = setTimeout(() => {
    s.destroy();
    raw.destroy();
  }, LINGER_MS);
  timer.unref();
  s.once('close', () => clearTimeout(timer));
  s.end();
}

/**
 * Is the path from here to a password check open for `user`? Sends a StartupMessage as `user`
 * over the endpoint's TLS mode, reads the server's first authentication answer and hangs up;
 * no password is sent except a random wrong one to a cleartext request (see above). Never
 * throws: anything that is not a clear answer, including a timeout, is a `fault`.
 */
export function probeLoginPathOf(endpoint: Endpoint, user: string, opts: ProbeOptions = {}): Promise<LoginPathProbe> {
  if (user.includes('\0')) return Promise.resolve(fault('the role name contains a NUL byte'));
  let ssl: ConnectionOptions | false;
  try {
    ssl = (sslOptions(endpoint.sslmode, endpoint.caFile) || false) as ConnectionOptions | false;
  } catch (err) {
    return Promise.resolve(fault(`cannot read the CA file for sslmode ${endpoint.sslmode}: ${messageOf(err)}`));
  }
  return new Promise<LoginPathProbe>((resolve) => new ProbeSession(endpoint, user, opts, ssl, resolve).start());
}

/** One probe's connection: its sockets, what it is waiting for, and the answer once there is one. */
class ProbeSession {
  private readonly where: string;
  private readonly timeoutMs: number;
  private stage: string;
  private done = false;
  private cleartextAnswered = false;
  private inbox: Buffer = Buffer.alloc(0);
  private raw!: Socket;
  private stream!: Socket;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly user: string,
    private readonly opts: ProbeOptions,
    private readonly ssl: ConnectionOptions | false,
    private readonly resolve: (result: LoginPathProbe) => void,
  ) {
    this.timeoutMs = opts.timeoutMs ?? endpoint.connectTimeoutMs ?? 10_000;
    this.where = `${endpoint.host}:${endpoint.port}`;
    this.stage = `connecting to ${this.where}`;
  }

  /** Connect; the answer arrives through `resolve`, exactly once. */
  start(): void {
    this.raw = netConnect({ host: this.endpoint.host, port: this.endpoint.port });
    this.stream = this.raw;
    this.timer = setTimeout(
      () => this.finish(fault(`no answer within ${this.timeoutMs} ms while ${this.stage}`), false),
      this.timeoutMs,
    );
    this.watch(this.raw);
    this.raw.once('connect', () => this.onConnect());
  }

  private finish(result: LoginPathProbe, graceful: boolean): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    hangUp(this.stream, this.raw, graceful);
    this.resolve(result);
  }

  // 'error' listeners stay on both sockets for good (a late error after the answer is ignored by
  // finish), so no error of the probe's sockets is ever unhandled.
  private watch(s: Socket): void {
    s.on('error', (err) => this.finish(fault(`${this.stage}: ${err.message}`), false));
    s.on('close', () => this.finish(fault(`the server closed the connection while ${this.stage}`), false));
  }

  private onConnect(): void {
    if (this.done) return;
    this.raw.setNoDelay(true);
    if (!this.ssl) return this.startup();
    this.stage = `negotiating TLS with ${this.where}`;
    this.raw.once('data', (d: Buffer) => this.onSslAnswer(d));
    this.raw.write(int32Message(SSL_REQUEST_CODE));
  }

  private onSslAnswer(d: Buffer): void {
    if (this.done || !this.ssl) return;
    const where = this.where;
    const answer = d.toString('latin1', 0, 1);
    if (answer === 'N')
      return this.finish(
        fault(`${where} does not support SSL connections, but sslmode ${this.endpoint.sslmode} requires TLS`),
        false,
      );
    if (answer !== 'S')
      return this.finish(fault(`${where} answered the TLS request with ${JSON.stringify(answer)}`), false);
    // libpq too refuses bytes after 'S': they were not encrypted, so anyone on the path could have sent them.
    if (d.length > 1) return this.finish(fault(`${where} sent unencrypted data after agreeing to TLS`), false);
    // As node-postgres's verify login: the certificate is checked against `host`; SNI only for a DNS name.
    const options: ConnectionOptions = { socket: this.raw, host: this.endpoint.host, ...this.ssl };
    if (isIP(this.endpoint.host) === 0) options.servername = this.endpoint.host;
    const tls = tlsConnect(options);
    this.stream = tls;
    this.watch(tls);
    tls.once('secureConnect', () => this.startup());
  }

  private startup(): void {
    if (this.done) return;
    this.stage = `waiting for ${this.where}'s answer to a startup message as ${JSON.stringify(this.user)}`;
    this.stream.on('data', (d: Buffer) => this.onData(d));
    const params: Record<string, string> = { user: this.user, database: this.endpoint.database };
    params.application_name = this.opts.applicationName ?? 'pgrotate-preflight';
    this.stream.write(startupMessage(params));
  }

  private onData(d: Buffer): void {
    if (this.done) return; // what follows the answer (a session's start, say) is not read
    this.inbox = this.inbox.length ? Buffer.concat([this.inbox, d]) : d;
    while (!this.done && this.inbox.length >= 5) {
      const len = this.inbox.readInt32BE(1);
      if (len < 4 || len > MAX_ANSWER_BYTES)
        return this.finish(fault(`${this.where} answered with a malformed message (length ${len})`), false);
      if (this.inbox.length < 1 + len) return;
      const type = String.fromCharCode(this.inbox[0] as number);
      const body = this.inbox.subarray(5, 1 + len);
      this.inbox = this.inbox.subarray(1 + len);
      this.onMessage(type, body);
    }
  }

  private onMessage(type: string, body: Buffer): void {
    if (type === 'N') return; // a NoticeResponse says nothing about authentication
    if (type === 'E') return this.onError(errorFields(body));
    if (type !== 'R' || body.length < 4)
      return this.finish(
        fault(`unexpected answer ${JSON.stringify(type)} from ${this.where} while ${this.stage}`),
        false,
      );
    this.onAuthRequest(body.readInt32BE(0), body);
  }

  private onError(f: Record<string, string>): void {
    const message = f.M ?? `error ${f.C ?? '(no code)'}`;
    if (this.cleartextAnswered && f.C === '28P01') return this.finish({ open: true }, true);
    if (f.C === '28000') return this.finish({ open: false, reason: 'host-refused', message }, true);
    this.finish(fault(message), true);
  }

  private onAuthRequest(code: number, body: Buffer): void {
    const where = this.where;
    if (code === AUTH_OK) {
      const message = this.cleartextAnswered
        ? 'the server accepted a wrong password'
        : 'the server accepted the login without asking for a password';
      return this.finish({ open: false, reason: 'no-password-needed', message }, true);
    }
    if (this.cleartextAnswered)
      return this.finish(fault(`unexpected authentication request ${code} after a password from ${where}`), false);
    if (code === AUTH_MD5) return this.finish({ open: true }, true);
    if (code === AUTH_SASL) {
      const mechanisms = saslMechanisms(body);
      if (mechanisms.includes('SCRAM-SHA-256')) return this.finish({ open: true }, true);
      return this.finish(
        fault(`${where} offers SASL mechanisms ${mechanisms.join(', ') || '(none)'}, not SCRAM-SHA-256`),
        true,
      );
    }
    if (code === AUTH_CLEARTEXT) {
      this.cleartextAnswered = true;
      this.stage = `waiting for ${where}'s answer to a wrong password as ${JSON.stringify(this.user)}`;
      this.stream.write(passwordMessage(`pgrotate-probe-${randomBytes(24).toString('base64url')}`));
      return;
    }
    const method = OTHER_METHODS[code] ?? `method ${code}`;
    this.finish(
      { open: false, reason: 'host-refused', message: `the server asks for ${method} authentication, not a password` },
      true,
    );
  }
}
