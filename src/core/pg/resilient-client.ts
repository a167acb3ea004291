import pg from 'pg';

/**
 * A pg.Client that never turns a dropped connection into a process crash. node-postgres emits
 * 'error' on a client whose server goes away (a PostgreSQL restart, a failover); with no
 * listener that event is thrown, even for a client that is checked out of a pool where the
 * pool's own listener is not attached. The failure still reaches the caller as the rejection of
 * its next query. Passed to pools as their `Client` class.
 */
export class ResilientClient extends pg.Client {
  constructor(config?: string | pg.ClientConfig) {
    super(config);
    this.on('error', () => undefined);
  }
}
