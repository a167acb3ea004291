import type pg from 'pg';
import type { Redactor } from '../logging/redactor.js';
import { quoteIdent } from '../pg/quote.js';
import type { NewAuditEvent } from './state-types.js';

/**
 * The state database as the modules of src/core/state see it: its pool, the schema and the redactor
 * that guards every value written. Never handed out of src/core/state (test/unit/state-sql-boundary
 * checks that), so every statement against pgrotate's tables lives in this folder.
 */
export class StateTables {
  /** The schema name, quoted for SQL. */
  readonly s: string;

  constructor(
    readonly pool: pg.Pool,
    readonly schema: string,
    readonly redactor: Redactor,
  ) {
    this.s = quoteIdent(schema);
  }

  /** Append an audit event through any connection (a fence passes the one that holds it). */
  async audit(event: NewAuditEvent, client: pg.ClientBase | pg.Pool = this.pool): Promise<void> {
    const detail = this.redactor.scrubValue(event.detail ?? {});
    await client.query(
      `INSERT INTO ${this.s}.audit_events (account, rotation_id, kind, actor, detail) VALUES ($1, $2, $3, $4, $5)`,
      [event.account ?? null, event.rotationId ?? null, event.kind, event.actor ?? null, JSON.stringify(detail)],
    );
  }
}
