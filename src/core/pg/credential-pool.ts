import pg from 'pg';
import type { LiveCredential } from './live-credential.js';
import { ResilientClient } from './resilient-client.js';

type ConnectCallback = (err: Error | undefined, client?: pg.PoolClient, done?: (release?: unknown) => void) => void;

/**
 * A pool for one of pgrotate's own logins whose password pgrotate may rotate. Each new
 * connection takes the credential's password of the moment; a connection refused with 28P01
 * (the password was rotated by another process) makes the credential re-read the provider, and
 * the connection is tried once more. Idle and busy connections keep working across a rotation,
 * since PostgreSQL checks a password only at login.
 */
export class CredentialPool extends pg.Pool {
  constructor(
    config: pg.PoolConfig,
    private readonly credential: LiveCredential,
  ) {
    super({ ...config, user: credential.username, password: () => credential.password(), Client: ResilientClient });
  }

  override connect(): Promise<pg.PoolClient>;
  override connect(callback: ConnectCallback): void;
  override connect(callback?: ConnectCallback): Promise<pg.PoolClient> | void {
    const attempt = async (): Promise<pg.PoolClient> => {
      try {
        return await super.connect();
      } catch (err) {
        if ((err as { code?: string }).code !== '28P01' || !(await this.credential.refresh().catch(() => false)))
          throw err;
        return await super.connect();
      }
    };
    if (!callback) return attempt();
    attempt().then(
      (client) => callback(undefined, client, (release?: unknown) => client.release(release as Error | undefined)),
      (err: Error) => callback(err),
    );
  }
}
