import type pg from 'pg';
import { TargetUnreachableError } from '../../../src/core/errors.js';
import type { Endpoint } from '../../../src/core/pg/connection-options.js';
import type { LoginPathProbe, LoginResult, TargetConnector } from '../../../src/core/pg/target-connector.js';
import { deriveScramKeys } from '../../../src/core/scram/scram-verifier.js';

// A fake target connector over a simulated PostgreSQL catalogue. withAdmin hands the engine a
// client whose `query` records the SQL text and parameters it receives and applies the few
// statements src/core/pg/role-admin.ts sends (ALTER ROLE ... PASSWORD/VALID UNTIL, the pre-flight
// catalogue read, rolvaliduntil, pg_terminate_backend), so the engine runs the real helpers.
// tryLogin checks a password against the role's stored SCRAM verifier the way the server does
// (StoredKey from the verifier's salt and iterations), so "the new password logs in" is a fact
// of the simulated catalogue, not of the test's say-so. Any other statement is an error.

/** A login role in the simulated catalogue. */
export interface FakeRole {
  name: string;
  superuser: boolean;
  canLogin: boolean;
  /** VALID UNTIL; null: none. */
  validUntil: Date | null;
  connectionLimit: number;
  /** Other sessions of the role open now (what pg_terminate_backend would end). */
  sessions: number;
  /** The SCRAM verifier PostgreSQL stores (pg_authid.rolpassword); null: no password. */
  verifier: string | null;
  adminOption: boolean | null;
}

/** The admin login's own attributes. */
export interface FakeAdmin {
  name: string;
  superuser: boolean;
  createRole: boolean;
  serverVersion: number;
  signal: boolean;
}

/** One statement the engine sent through an admin connection (or, with `as`, a login as that role). */
export interface SqlCall {
  text: string;
  params: unknown[];
  as?: string;
}

/** One tryLogin call: who, and what the simulated server answered. */
export interface LoginCall {
  user: string;
  ok: boolean;
}

type ConnectorSurface = Pick<
  TargetConnector,
  | 'endpoint'
  | 'publicHost'
  | 'pgbouncers'
  | 'withAdmin'
  | 'withLogin'
  | 'tryLogin'
  | 'probeLoginPath'
  | 'closingSessionsOf'
>;

/** A simulated target database reached through the engine's `targets` dependency. */
export class FakeTargets implements ConnectorSurface {
  readonly roles = new Map<string, FakeRole>();
  readonly admin: FakeAdmin = {
    name: 'rotator',
    superuser: false,
    createRole: true,
    serverVersion: 150000,
    signal: true,
  };
  readonly sql: SqlCall[] = [];
  readonly logins: LoginCall[] = [];
  readonly probes: string[] = [];
  /** How many admin connections were asked for. */
  adminSessions = 0;
  /** How many sessions as the account's own role ran statements (admin: self). */
  selfSessions = 0;
  /** What the pre-flight's wrong-password probe learns. */
  probe: LoginPathProbe = { open: true };
  /** Overrides the simulated server's answer to a login (return undefined to let it decide). */
  loginOverride: ((user: string, password: string) => LoginResult | undefined) | null = null;
  /** Admin connections fail as unreachable while this says so (asked at each connection). */
  failAdminWhen: (() => boolean) | null = null;
  /** pg_terminate_backend fails with a permission error. */
  terminateFails = false;

  constructor(private readonly targetName = 'main') {}

  /** Add a login role (defaults: a plain LOGIN role with no password). */
  addRole(name: string, fields: Partial<FakeRole> = {}): FakeRole {
    const role: FakeRole = {
      name,
      superuser: false,
      canLogin: true,
      validUntil: null,
      connectionLimit: -1,
      sessions: 0,
      verifier: null,
      adminOption: true,
      ...fields,
    };
    this.roles.set(name, role);
    return role;
  }

  /** The statements sent, text only, with the verifier literal and timestamps masked for comparison. */
  statements(): string[] {
    return this.sql.map((s) =>
      s.text
        .replace(/'SCRAM-SHA-256\$[^']+'/g, "'<verifier>'")
        .replace(/'\d{4}-\d\d-\d\dT[\d:.]+Z'/g, "'<time>'")
        .replace(/\s+/g, ' ')
        .trim(),
    );
  }

  /** Whether the simulated server accepts `password` for `user` right now. */
  async accepts(user: string, password: string): Promise<boolean> {
    return (await this.check(user, password)).ok;
  }

  endpoint(targetName: string): Endpoint {
    this.known(targetName);
    return { host: 'db.internal', port: 5432, database: 'app', sslmode: 'verify-full' };
  }

  /** No PgBouncer in front of the simulated target. */
  pgbouncers(targetName: string): [] {
    this.known(targetName);
    return [];
  }

  publicHost(targetName: string): string {
    this.known(targetName);
    return 'db.example.com';
  }

  async withAdmin<T>(
    targetName: string,
    account: string | undefined,
    fn: (client: pg.PoolClient) => Promise<T>,
  ): Promise<T> {
    this.known(targetName);
    this.adminSessions++;
    if (this.failAdminWhen?.()) {
      throw new TargetUnreachableError(
        `account ${account ?? '?'}: target ${targetName}: cannot connect as admin: connection refused`,
        { account, target: targetName },
      );
    }
    const client = { query: (text: string, params: unknown[] = []) => this.query(text, params) };
    // The helpers in role-admin.ts only call query(); that is all this client has.
    return fn(client as unknown as pg.PoolClient);
  }

  /** A session as `user` (admin: self): the password is checked as tryLogin's, then `fn` runs as that role. */
  async withLogin<T>(
    targetName: string,
    user: string,
    password: string,
    fn: (client: pg.ClientBase) => Promise<T>,
  ): Promise<{ ok: true; value: T } | { ok: false; login: Extract<LoginResult, { ok: false }> }> {
    const login = await this.tryLogin(targetName, user, password);
    if (!login.ok) return { ok: false, login };
    this.selfSessions++;
    const client = { query: (text: string, params: unknown[] = []) => this.query(text, params, user) };
    return { ok: true, value: await fn(client as unknown as pg.ClientBase) };
  }

  async tryLogin(targetName: string, user: string, password: string): Promise<LoginResult> {
    this.known(targetName);
    const result = this.loginOverride?.(user, password) ?? (await this.check(user, password));
    this.logins.push({ user, ok: result.ok });
    return result;
  }

  /** The simulated server's logins end at once: none is ever still closing. */
  closingSessionsOf(targetName: string): number[] {
    this.known(targetName);
    return [];
  }

  async probeLoginPath(targetName: string, user: string): Promise<LoginPathProbe> {
    this.known(targetName);
    this.probes.push(user);
    return this.probe;
  }

  private async check(user: string, password: string): Promise<LoginResult> {
    const refused: LoginResult = {
      ok: false,
      authFailure: true,
      refusal: 'password',
      message: `password authentication failed for user "${user}"`,
    };
    const role = this.roles.get(user);
    if (!role || !role.canLogin || !role.verifier) return refused;
    if (role.validUntil && role.validUntil.getTime() <= Date.now()) return refused;
    const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):/.exec(role.verifier);
    if (!m) return refused;
    const keys = await deriveScramKeys(password, Buffer.from(m[2] as string, 'base64'), Number(m[1]));
    return keys.storedKey.toString('base64') === m[3] ? { ok: true, proof: 'session' } : refused;
  }

  private async query(text: string, params: unknown[], as?: string): Promise<pg.QueryResult> {
    this.sql.push(as === undefined ? { text, params } : { text, params, as });
    const rows = this.apply(text, params, as);
    return { rows, rowCount: rows.length, command: '', oid: 0, fields: [] };
  }

  private apply(text: string, params: unknown[], as?: string): Record<string, unknown>[] {
    const ident = '"((?:[^"]|"")+)"';
    let m: RegExpExecArray | null;
    if (/FROM pg_catalog\.pg_roles me/.test(text)) return this.inspect(params[0] as string[], as);
    if (as !== undefined && (m = /^ALTER ROLE CURRENT_USER PASSWORD '(SCRAM-SHA-256[^']+)'$/.exec(text))) {
      // Any role may set its own password; nothing else (the engine must not try).
      this.role(as.replace(/"/g, '""')).verifier = m[1] as string;
      return [];
    }
    if (as !== undefined && /^ALTER ROLE/.test(text))
      throw Object.assign(new Error('permission denied to alter role'), { code: '42501' });
    if (
      (m = new RegExp(`^ALTER ROLE ${ident} PASSWORD '(SCRAM-SHA-256[^']+)'(?: VALID UNTIL '([^']+)')?$`).exec(text))
    ) {
      const role = this.role(m[1] as string);
      role.verifier = m[2] as string;
      if (m[3] !== undefined) role.validUntil = m[3] === 'infinity' ? null : new Date(m[3]);
      return [];
    }
    if ((m = new RegExp(`^ALTER ROLE ${ident} PASSWORD NULL$`).exec(text))) {
      this.role(m[1] as string).verifier = null;
      return [];
    }
    if ((m = new RegExp(`^ALTER ROLE ${ident} VALID UNTIL '([^']+)'$`).exec(text))) {
      this.role(m[1] as string).validUntil = new Date(m[2] as string);
      return [];
    }
    if (/SELECT rolvaliduntil AS v FROM pg_catalog\.pg_roles WHERE rolname = \$1/.test(text)) {
      const role = this.roles.get(params[0] as string);
      return role ? [{ v: role.validUntil ?? null }] : [];
    }
    if (/pg_terminate_backend/.test(text)) {
      // A role may end its own other sessions; another role's need pg_signal_backend.
      if (this.terminateFails || (as !== undefined && params[0] !== as))
        throw Object.assign(new Error('permission denied to terminate process'), { code: '42501' });
      const role = this.role(params[0] as string);
      const ended = Array.from({ length: role.sessions }, () => ({ ended: true }));
      role.sessions = 0;
      return ended;
    }
    throw new Error(`fake target: unexpected SQL: ${text}`);
  }

  /** The pre-flight's catalogue read: one row per requested role (a null row when none exists). */
  private inspect(wanted: string[], as?: string): Record<string, unknown>[] {
    const self = as !== undefined ? this.roles.get(as) : undefined;
    // A self login reads the catalogue as the role: no CREATEROLE, no pg_signal_backend.
    const a: FakeAdmin = self
      ? {
          name: self.name,
          superuser: self.superuser,
          createRole: false,
          serverVersion: this.admin.serverVersion,
          signal: false,
        }
      : this.admin;
    const adminCols = {
      admin: a.name,
      admin_super: a.superuser,
      admin_createrole: a.createRole,
      admin_signal: a.signal,
      v: a.serverVersion,
    };
    const found = wanted.map((n) => this.roles.get(n)).filter((r): r is FakeRole => r !== undefined);
    if (found.length === 0)
      return [
        {
          ...adminCols,
          rolname: null,
          rolsuper: null,
          rolcanlogin: null,
          rolvaliduntil: null,
          rolconnlimit: null,
          sessions: null,
          admin_option: null,
        },
      ];
    return found.map((r) => ({
      ...adminCols,
      rolname: r.name,
      rolsuper: r.superuser,
      rolcanlogin: r.canLogin,
      rolvaliduntil: r.validUntil,
      rolconnlimit: r.connectionLimit,
      sessions: r.sessions,
      admin_option: a.serverVersion >= 160000 ? r.adminOption : null,
    }));
  }

  private role(quoted: string): FakeRole {
    const name = quoted.replace(/""/g, '"');
    const role = this.roles.get(name);
    if (!role) throw Object.assign(new Error(`role "${name}" does not exist`), { code: '42704' });
    return role;
  }

  private known(targetName: string): void {
    if (targetName !== this.targetName)
      throw new TargetUnreachableError(`unknown target ${targetName}`, { target: targetName });
  }
}
