import pg from 'pg';
import type { Redactor } from '../logging/redactor.js';
import type { SecretProvider } from '../provider/secret-provider.js';
import type { LoginResult } from './login-result.js';

/** How a candidate password fared in a test login. */
export type CandidateCheck = 'ok' | 'refused' | 'fault';

/** Where a login's password lives when pgrotate rotates that login itself. */
export interface CredentialSource {
  /** The provider's current and pending values (either may be absent). */
  read(): Promise<{ username: string; current: string | null; pending: string | null }>;
  /** Log in once with `password` and say whether PostgreSQL accepted it. */
  check(username: string, password: string): Promise<CandidateCheck>;
}

/**
 * The password of one of pgrotate's own logins (the state database's, a target's admin) that an
 * account of pgrotate may rotate. Between apply and promote only the provider's pending value
 * logs in, and a crash there leaves it so; by invariant I1 any password PostgreSQL accepts is
 * current or pending, so resolving means trying current, then pending. The engine sets the new
 * password the moment it is applied, so this process's next connection uses it; other
 * processes find it through `refresh` after a refused login.
 */
export class LiveCredential {
  private value: { username: string; password: string } | null = null;
  private refreshing: Promise<boolean> | null = null;
  private lastRefreshAt = 0;
  /** Passwords this credential made the redactor keep, newest last; trimmed to two generations. */
  private readonly keptPasswords: string[] = [];

  constructor(
    private readonly source: CredentialSource,
    private readonly redactor: Redactor,
    /** What the credential is, for error messages ("state database", "target main admin"). */
    readonly label: string,
    /** Least time between refreshes caused by refused logins (a wrong password must not hammer the store). */
    private readonly minRefreshIntervalMs = 1_000,
  ) {}

  /** Resolve at start: the candidate PostgreSQL accepts, else the provider's current value. */
  async resolve(): Promise<{ username: string; password: string }> {
    await this.pick(null);
    if (!this.value) throw new Error(`${this.label}: not found in its provider`);
    return this.value;
  }

  get username(): string {
    if (!this.value) throw new Error(`${this.label}: credential used before it was resolved`);
    return this.value.username;
  }

  /** The password to open the next connection with (node-postgres calls this per connection). */
  password(): string {
    if (!this.value) throw new Error(`${this.label}: credential used before it was resolved`);
    return this.value.password;
  }

  /** This process just made `password` the one PostgreSQL accepts (applied it, or restored it). */
  set(password: string): void {
    this.use(password);
  }

  /**
   * Switch to `password`. It is kept by the redactor for the process (it outlives the rotation
   * that set it); passwords older than the one before it are forgotten, so a worker rotating its
   * own login for months holds two of them, not all.
   */
  private use(password: string, username = this.value?.username): void {
    if (username === undefined) return;
    this.redactor.keep(password);
    this.value = { username, password };
    if (this.keptPasswords[this.keptPasswords.length - 1] === password) return;
    const at = this.keptPasswords.indexOf(password);
    if (at >= 0) this.keptPasswords.splice(at, 1);
    this.keptPasswords.push(password);
    while (this.keptPasswords.length > 2) this.redactor.remove(this.keptPasswords.shift());
  }

  /**
   * A login with the password in use was refused: another process may have rotated it. Re-read
   * the provider and switch to a candidate that logs in. True when the password changed.
   */
  refresh(): Promise<boolean> {
    if (this.refreshing) return this.refreshing;
    if (Date.now() - this.lastRefreshAt < this.minRefreshIntervalMs) return Promise.resolve(false);
    const before = this.value?.password ?? null;
    this.refreshing = this.pick(before)
      .then(() => this.value !== null && this.value.password !== before)
      .finally(() => {
        this.lastRefreshAt = Date.now();
        this.refreshing = null;
      });
    return this.refreshing;
  }

  private async pick(refused: string | null): Promise<void> {
    const { username, current, pending } = await this.source.read();
    this.redactor.add(current);
    this.redactor.add(pending);
    const candidates = [current, pending].filter((p): p is string => p !== null && p !== refused);
    for (const candidate of candidates) {
      // Only one candidate, or none refused yet at start: trying it costs a login for nothing.
      if (candidates.length === 1 && refused === null) break;
      const verdict = await this.source.check(username, candidate);
      if (verdict === 'ok') {
        this.use(candidate, username);
        return;
      }
      if (verdict === 'fault') break;
    }
    const fallback = current ?? pending;
    if (fallback !== null && (refused === null || this.value === null)) this.use(fallback, username);
  }
}

/**
 * A provider secret as a credential source; `check` logs in where the credential is used.
 * `what` names it in errors ("admin secret pg/admin"): "<what> not found in provider <name>".
 */
export function providerSource(
  provider: SecretProvider,
  secret: string,
  what: string,
  check: CredentialSource['check'],
): CredentialSource {
  return {
    async read() {
      const [current, pending] = await Promise.all([provider.getCurrent(secret), provider.getPending(secret)]);
      const username = current?.username ?? pending?.username;
      if (!username) throw new Error(`${what} not found in provider ${provider.name}`);
      // A pending value for another user (a foreign rotation) is not a candidate.
      return {
        username,
        current: current?.password ?? null,
        pending: pending && pending.username === username ? pending.password : null,
      };
    },
    check,
  };
}

/** A test login's result as a candidate verdict: only a password refusal rules a candidate out. */
export function verdictOf(r: LoginResult): CandidateCheck {
  if (r.ok) return 'ok';
  return r.refusal === 'fault' ? 'fault' : 'refused';
}

/** One login with a full client config (the state database), as a candidate verdict. */
export async function checkLogin(config: pg.ClientConfig): Promise<CandidateCheck> {
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  try {
    await client.connect();
    return 'ok';
  } catch (err) {
    const code = (err as { code?: string }).code;
    return code === '28P01' || code === '28000' ? 'refused' : 'fault';
  } finally {
    await client.end().catch(() => undefined);
  }
}
