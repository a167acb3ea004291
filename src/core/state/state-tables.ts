import type pg from 'pg';
import type { Redactor } from '../logging/redactor.js';
import { STATE_SQL } from './state-statements.js';
import type { NewAuditEvent } from './state-types.js';

/**
 * The state database as the modules of src/core/state see it: its pool (whose connections resolve
 * names in the state schema, see state-search-path.ts), the schema's name (for lock keys) and the
 * redactor that guards every value written. Never handed out of src/core/state
 * (test/unit/state-sql-boundary checks that), so every statement against pgrotate's tables lives
 * in this folder, in state-statements.ts.
 */
export class StateTables {
  constructor(
    readonly pool: pg.Pool,
    readonly schema: string,
    readonly redactor: Redactor,
  ) {}

  /** Append an audit event through any connection (a fence passes the one that holds it). */
  async audit(event: NewAuditEvent, client: pg.ClientBase | pg.Pool = this.pool): Promise<void> {
    const detail = this.redactor.scrubValue(event.detail ?? {});
    await client.query(STATE_SQL.insertAuditEvent, [
      event.account ?? null,
      event.rotationId ?? null,
      event.kind,
      event.actor ?? null,
      JSON.stringify(detail),
    ]);
  }
}
