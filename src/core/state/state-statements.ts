// Every statement pgrotate sends to its state database after migrating, by name, each once. No
// schema name appears in them: the state pool's connections resolve unqualified names in the
// state schema (search_path, set in the startup packet: see state-search-path.ts), and a
// migration runs with the same search_path (migrations.ts). test/unit/state-sql-boundary.test.ts
// checks that no other file holds SQL on a state table, and that these texts name no schema.

/**
 * A `rotations` row (alias r) that did everything request $2/$3 asked for: it succeeded, started
 * after the request (state-database clock), and when sessions were to end it ended them and
 * expired the previous login at once (alternating accounts otherwise keep their previous role for
 * the grace period). Part of two statements below.
 */
const SATISFIES_REQUEST = `r.account = $1 AND r.status = 'succeeded' AND r.started_at >= to_timestamp($2::double precision / 1000)
    AND (NOT $3::boolean OR (r.terminate_sessions AND r.sessions_ended IS NOT NULL
      AND (r.old_credential_expires_at IS NULL OR r.old_credential_expires_at <= r.finished_at)))`;

/** The named statements on the state tables (and the locks and clock reads that go with them). */
export const STATE_SQL = Object.freeze({
  // --- the connection -------------------------------------------------------------------------

  /** Readiness: the state database answers. */
  ping: 'SELECT 1',
  /** The state database's clock in ms since epoch. */
  clockMs: 'SELECT floor(extract(epoch FROM now()) * 1000)::bigint AS ms',
  /** A transaction-level advisory lock on the text key $1 (an account sync, an audit run). */
  lockForTransaction: 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))',

  // --- accounts -------------------------------------------------------------------------------

  /** $1 name, $2 target, $3 strategy, $4 error: a refusal before any rotation record existed. */
  recordRefusal: `INSERT INTO accounts (name, target, strategy, last_status, last_error, consecutive_failures, updated_at)
     VALUES ($1, $2, $3, 'failed', $4, 1, now())
     ON CONFLICT (name) DO UPDATE SET last_status = 'failed', last_error = EXCLUDED.last_error,
       consecutive_failures = accounts.consecutive_failures + 1, updated_at = now()`,
  /** One account's row by name ($1). */
  account: 'SELECT * FROM accounts WHERE name = $1',
  /** Every account's row, by name. */
  allAccounts: 'SELECT * FROM accounts ORDER BY name',
  /** At most $1 due accounts, oldest due first, with the clock. */
  dueAccounts: `SELECT name, floor(extract(epoch FROM next_due_at) * 1000)::bigint AS due_ms, floor(extract(epoch FROM now()) * 1000)::bigint AS now_ms
       FROM accounts WHERE next_due_at <= now() ORDER BY next_due_at LIMIT $1`,
  /** Claim at most $1 due accounts not queued within $2 ms (racing ticks skip each other's rows). */
  claimDueAccounts: `WITH due AS (
       SELECT name FROM accounts
        WHERE next_due_at <= now() AND (queued_at IS NULL OR queued_at < now() - $2::double precision * interval '1 millisecond')
        ORDER BY next_due_at LIMIT $1
        FOR UPDATE SKIP LOCKED)
     UPDATE accounts a SET queued_at = now() FROM due WHERE a.name = due.name
     RETURNING a.name, floor(extract(epoch FROM a.next_due_at) * 1000)::bigint AS due_ms, floor(extract(epoch FROM now()) * 1000)::bigint AS now_ms`,
  /** Release account $1's claim made at $2 (ms, floored): a newer claim is left alone. */
  releaseClaim:
    'UPDATE accounts SET queued_at = NULL WHERE name = $1 AND queued_at < to_timestamp(($2::double precision + 1) / 1000)',
  /** Rotation times of the accounts named in $1, with the clock. */
  accountTimes:
    'SELECT name, target, last_rotated_at, next_due_at, last_status, now() AS now FROM accounts WHERE name = ANY($1::text[]) ORDER BY name',
  /** The accounts named in $2 whose due time passed more than $1 ms ago, oldest first. */
  overdueAccounts: `SELECT name, target, next_due_at FROM accounts
      WHERE next_due_at < now() - ($1::double precision * interval '1 millisecond') AND name = ANY($2::text[])
      ORDER BY next_due_at`,
  /** Account $1's next due time $2 and schedule key $3, if rotation $4 is still its last. */
  planNextDue: 'UPDATE accounts SET next_due_at = $2, schedule = $3 WHERE name = $1 AND last_rotation_id = $4',
  /** Account $1 failed ($3): due again after $2 ms ($4 scheduled) or sooner (a request). */
  coolDownAccount: `UPDATE accounts SET next_due_at = CASE WHEN $4::boolean OR next_due_at IS NULL
         THEN now() + ($2::double precision * interval '1 millisecond')
         ELSE LEAST(next_due_at, now() + ($2::double precision * interval '1 millisecond')) END,
       last_status = 'failed', last_error = $3, updated_at = now()
     WHERE name = $1 RETURNING next_due_at AS next`,
  /** Account $1's failure $2 during a fenced rotation. */
  markAccountFailed:
    "UPDATE accounts SET last_status = 'failed', last_error = $2, consecutive_failures = consecutive_failures + 1, updated_at = now() WHERE name = $1",

  // --- account sync (config -> accounts) ------------------------------------------------------

  /** Configured names $1 and schedule keys $2 (newline-joined) that are new or need re-planning. */
  changedAccounts: `SELECT c.name, a.last_rotated_at, COALESCE(a.adopted_from, a.adopted_at) AS adopted_base, a.name IS NULL AS is_new
         FROM unnest(string_to_array($1, E'\\n'), string_to_array($2, E'\\n')) AS c(name, key)
         LEFT JOIN accounts a ON a.name = c.name
        WHERE a.name IS NULL OR a.schedule IS DISTINCT FROM c.key OR (a.next_due_at IS NULL AND c.key <> 'manual')`,
  /** Write the planned accounts of the JSON array $1. */
  writePlannedAccounts: `INSERT INTO accounts (name, target, strategy, schedule, next_due_at)
         SELECT name, target, strategy, schedule, next_due_at
           FROM json_to_recordset($1::json) AS r(name text, target text, strategy text, schedule text, next_due_at timestamptz)
         ON CONFLICT (name) DO UPDATE SET target = EXCLUDED.target, strategy = EXCLUDED.strategy,
           schedule = EXCLUDED.schedule, next_due_at = EXCLUDED.next_due_at, updated_at = now()`,
  /** Retire the scheduled accounts not among the newline-joined names $1. */
  retireUnconfigured: `UPDATE accounts SET next_due_at = NULL, schedule = 'not-configured', updated_at = now()
       WHERE next_due_at IS NOT NULL AND NOT (name = ANY(string_to_array($1, E'\\n')))`,

  // --- adoption (onboard: adopt) ---------------------------------------------------------------

  /** Of the accounts named in $1, those pgrotate never rotated, started rotating or adopted, with their last refusal. */
  adoptionCandidates: `SELECT a.name, a.adopt_refusal FROM accounts a
      WHERE a.name = ANY($1::text[]) AND a.adopted_at IS NULL AND a.last_rotated_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM rotations r WHERE r.account = a.name)
      ORDER BY a.name`,
  /** Adopt account $1 (last changed $2, active role $3, next due $4) with its `account.adopted` event (actor $5, detail $6), if still a candidate. */
  adoptAccount: `WITH adopted AS (
         UPDATE accounts a SET adopted_at = now(), adopted_from = $2, active_role = $3, next_due_at = $4,
           adopt_refusal = NULL, updated_at = now()
          WHERE a.name = $1 AND a.adopted_at IS NULL AND a.last_rotated_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM rotations r WHERE r.account = a.name)
         RETURNING a.name)
       INSERT INTO audit_events (account, kind, actor, detail) SELECT name, 'account.adopted', $5, $6::jsonb FROM adopted
       RETURNING id`,
  /** Refuse adopting account $1 for reason $2 (not due until fixed); an `account.adopt-refused` event (actor $3, detail $4) when the reason is new. */
  refuseAdoption: `WITH old AS (SELECT adopt_refusal FROM accounts WHERE name = $1),
       refused AS (
         UPDATE accounts a SET next_due_at = NULL, adopt_refusal = $2, updated_at = now()
          WHERE a.name = $1 AND a.adopted_at IS NULL AND a.last_rotated_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM rotations r WHERE r.account = a.name)
         RETURNING a.name)
       INSERT INTO audit_events (account, kind, actor, detail)
         SELECT refused.name, 'account.adopt-refused', $3, $4::jsonb FROM refused, old
          WHERE old.adopt_refusal IS DISTINCT FROM $2`,

  // --- rotations ------------------------------------------------------------------------------

  /** Account $1's unfinished rotation (at most one: rotations_one_running_per_account). */
  runningRotation: "SELECT * FROM rotations WHERE account = $1 AND status = 'running'",
  /** The accounts with an unfinished rotation. */
  accountsWithRunningRotation: "SELECT account FROM rotations WHERE status = 'running'",
  /** Rotation $4 satisfies request $2/$3 of account $1. */
  rotationSatisfies: `SELECT 1 FROM rotations r WHERE ${SATISFIES_REQUEST} AND r.id = $4`,
  /** Whether account $1's request $2/$3 still needs a rotation of its own: one round trip. */
  requestStanding: `SELECT EXISTS (SELECT 1 FROM rotations WHERE account = $1 AND status = 'running') AS running,
            d.id AS done_id,
            -- Sessions ended for the request: when it ends sessions, every rotation that finished
            -- after it ending sessions counts (one resumed for it, then the one that satisfies it,
            -- perhaps in an attempt of the job that died before reporting), not only the last.
            CASE WHEN d.id IS NULL OR NOT $3::boolean THEN d.sessions_ended
                 ELSE (SELECT COALESCE(SUM(x.sessions_ended), 0)::int FROM rotations x
                        WHERE x.account = $1 AND x.status = 'succeeded' AND x.terminate_sessions
                          AND x.sessions_ended IS NOT NULL AND x.finished_at >= to_timestamp($2::double precision / 1000))
            END AS done_sessions,
            COALESCE((SELECT next_due_at IS NULL OR next_due_at > now() FROM accounts WHERE name = $1), false) AS not_due
       FROM (SELECT 1) one
       LEFT JOIN LATERAL (SELECT r.id, r.sessions_ended FROM rotations r WHERE ${SATISFIES_REQUEST} ORDER BY r.started_at DESC LIMIT 1) d ON true`,

  // --- the fence (rotation-fence.ts) ----------------------------------------------------------

  /**
   * Try the session advisory lock on key $1 and, in the same round trip, read account $2's
   * unfinished rotation. The lock is taken in a subquery of its own, so it is called once
   * whatever the join order.
   */
  tryFence: `SELECT l.locked, r.* FROM (SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked) l
       LEFT JOIN rotations r ON l.locked AND r.account = $2 AND r.status = 'running'`,
  /** Give up the session advisory lock on key $1. */
  releaseFence: 'SELECT pg_advisory_unlock(hashtextextended($1, 0))',
  /** A new rotation record, its account row and its `rotation.started` event: one statement. */
  createRotation: `WITH acc AS (
         INSERT INTO accounts (name, target, strategy) VALUES ($2, $9, $3)
         ON CONFLICT (name) DO UPDATE SET target = EXCLUDED.target, strategy = EXCLUDED.strategy, updated_at = now()),
       ev AS (
         INSERT INTO audit_events (account, rotation_id, kind, actor, detail) VALUES ($2, $1, 'rotation.started', $7, $10))
       INSERT INTO rotations (id, account, strategy, status, step, target_role, previous_role, reason, requested_by, terminate_sessions)
       VALUES ($1, $2, $3, 'running', 'created', $4, $5, $6, $7, $8) RETURNING *`,
  /** One more attempt at unfinished rotation $1 ($2: it now ends sessions). */
  resumeRotation: `UPDATE rotations SET attempts = attempts + 1, updated_at = clock_timestamp(), error = NULL,
           terminate_sessions = terminate_sessions OR $2
         WHERE id = $1 AND status = 'running' RETURNING *`,
  /** Rotation $1 completed step $2 (with its facts $3, $4) and its audit event $5: one statement. */
  advanceRotation: `WITH advanced AS (
         UPDATE rotations SET step = $2, updated_at = clock_timestamp(),
           applied_at = COALESCE($3, applied_at), old_credential_expires_at = COALESCE($4, old_credential_expires_at)
         WHERE id = $1 AND status = 'running' RETURNING id, account)
       INSERT INTO audit_events (account, rotation_id, kind) SELECT account, id, $5 FROM advanced`,
  /**
   * Rotation $1 succeeded: its record, account $4's new state, the audit events of the steps
   * passed since the last write ($10 kinds at $11 times) and the success event, atomically.
   */
  succeedRotation: `WITH finished AS (
         UPDATE rotations SET status = 'succeeded', step = 'recorded', finished_at = clock_timestamp(),
           updated_at = clock_timestamp(), old_credential_expires_at = $2, sessions_ended = $3,
           applied_at = COALESCE($12, applied_at)
         WHERE id = $1 AND status = 'running' RETURNING id),
       acc AS (
         UPDATE accounts SET active_role = $5, last_rotation_id = $1, last_rotated_at = clock_timestamp(),
           old_credential_expires_at = $2, next_due_at = $6, last_status = 'succeeded', last_error = NULL,
           consecutive_failures = 0, warnings = $9, updated_at = now()
         WHERE name = $4 AND EXISTS (SELECT 1 FROM finished)),
       ev AS (
         INSERT INTO audit_events (at, account, rotation_id, kind, actor, detail)
         SELECT COALESCE(e.at, clock_timestamp()), $4, f.id, e.kind, e.actor, e.detail
         FROM finished f,
           unnest($10::text[] || 'rotation.succeeded'::text, $11::timestamptz[] || NULL::timestamptz,
                  array_fill(NULL::text, ARRAY[cardinality($10::text[])]) || $7::text,
                  array_fill('{}'::jsonb, ARRAY[cardinality($10::text[])]) || $8::jsonb)
             WITH ORDINALITY AS e(kind, at, actor, detail, n)
         ORDER BY e.n)
       SELECT count(*) AS n FROM finished`,
  /** Rotation $1 failed with $2, having reached step $3 (applied at $4). */
  failRotation: `UPDATE rotations SET status = 'failed', finished_at = clock_timestamp(), updated_at = clock_timestamp(), error = $2,
           step = $3, applied_at = COALESCE($4, applied_at)
         WHERE id = $1 AND status = 'running'`,
  /** Error $2 on rotation $1, which stays resumable. */
  noteRotationError:
    "UPDATE rotations SET error = $2, updated_at = clock_timestamp() WHERE id = $1 AND status = 'running'",

  // --- audit events ---------------------------------------------------------------------------

  /** One audit event. */
  insertAuditEvent: 'INSERT INTO audit_events (account, rotation_id, kind, actor, detail) VALUES ($1, $2, $3, $4, $5)',
  /** Events of steps passed (kinds $3 at times $4) of account $1's rotation $2, in order. */
  insertPassedSteps: `INSERT INTO audit_events (at, account, rotation_id, kind)
       SELECT e.at, $1, $2, e.kind FROM unnest($3::text[], $4::timestamptz[]) WITH ORDINALITY AS e(kind, at, n)
       ORDER BY e.n`,
  /** The newest $2 events of account $1, oldest first. */
  accountHistory:
    'SELECT * FROM (SELECT * FROM audit_events WHERE account = $1 ORDER BY id DESC LIMIT $2) e ORDER BY id',

  // --- previous-role usage (previous-role-usage-store.ts) ------------------------------------

  /**
   * Alternating accounts whose last rotation left a previous role not yet finally checked, and
   * whose expiry passed less than $1 ms ago: with the rotation, the switch, the expiry, the stored
   * sample and the clock.
   */
  accountsInGrace: `SELECT a.name AS account, a.target, r.id AS rotation_id, r.previous_role AS role,
            a.last_rotated_at AS switched_at, a.old_credential_expires_at AS expires_at,
            u.sampled_at, u.sessions, u.clients, u.oldest_backend_start, u.last_used_at, u.alerted_at, u.expired_at,
            now() AS now
       FROM accounts a
       JOIN rotations r ON r.id = a.last_rotation_id
       LEFT JOIN previous_role_usage u ON u.account = a.name AND u.rotation_id = r.id
      WHERE a.old_credential_expires_at > now() - ($1::double precision * interval '1 millisecond')
        AND a.strategy = 'alternating' AND r.previous_role IS NOT NULL AND u.final_at IS NULL
      ORDER BY a.name`,
  /**
   * Store the samples of the JSON array $1 (one per account); a new rotation of an account
   * starts its row afresh. last_used_at: now when the sample saw a session, else unchanged (the
   * switch for a new row). Returns each account's last_used_at.
   */
  recordUsageSamples: `INSERT INTO previous_role_usage AS u
         (account, rotation_id, target, role, sampled_at, sessions, clients, oldest_backend_start, last_used_at)
       SELECT s.account, s.rotation_id, s.target, s.role, now(), s.sessions, COALESCE(s.clients, '[]'::jsonb), s.oldest,
              CASE WHEN s.sessions > 0 THEN now() ELSE s.switched_at END
         FROM json_to_recordset($1::json) AS s(account text, rotation_id uuid, target text, role text, sessions integer,
              clients jsonb, oldest timestamptz, switched_at timestamptz)
       ON CONFLICT (account) DO UPDATE SET rotation_id = EXCLUDED.rotation_id, target = EXCLUDED.target,
         role = EXCLUDED.role, sampled_at = EXCLUDED.sampled_at, sessions = EXCLUDED.sessions,
         clients = EXCLUDED.clients, oldest_backend_start = EXCLUDED.oldest_backend_start,
         last_used_at = CASE WHEN u.rotation_id IS DISTINCT FROM EXCLUDED.rotation_id OR EXCLUDED.sessions > 0
                             THEN EXCLUDED.last_used_at ELSE u.last_used_at END,
         alerted_at = CASE WHEN u.rotation_id = EXCLUDED.rotation_id THEN u.alerted_at END,
         expired_at = CASE WHEN u.rotation_id = EXCLUDED.rotation_id THEN u.expired_at END,
         final_at = CASE WHEN u.rotation_id = EXCLUDED.rotation_id THEN u.final_at END
       RETURNING u.account, u.last_used_at`,
  /** Claim the still-in-use alert of account $1's rotation $2: a row back for the one claimer. */
  claimUsageAlert:
    'UPDATE previous_role_usage SET alerted_at = now() WHERE account = $1 AND rotation_id = $2 AND alerted_at IS NULL RETURNING 1',
  /** Claim the final check (after the expiry) of account $1's rotation $2: a row back for the one claimer. */
  claimUsageFinal:
    'UPDATE previous_role_usage SET final_at = now() WHERE account = $1 AND rotation_id = $2 AND final_at IS NULL RETURNING 1',
  /**
   * Account $1's previous role (of rotation $2, still its last) expired early at $3: the
   * account's and the rotation's recorded expiry, the usage row, and audit event $4 with detail
   * $5, in one statement. Returns a row when rotation $2 was still the account's last.
   */
  recordEarlyExpiry: `WITH acc AS (
         UPDATE accounts SET old_credential_expires_at = $3, updated_at = now()
          WHERE name = $1 AND last_rotation_id = $2 RETURNING name),
       rot AS (
         UPDATE rotations SET old_credential_expires_at = $3 WHERE id = $2 AND EXISTS (SELECT 1 FROM acc) RETURNING id),
       usage AS (
         UPDATE previous_role_usage SET expired_at = $3 WHERE account = $1 AND rotation_id = $2 AND EXISTS (SELECT 1 FROM acc)),
       ev AS (
         INSERT INTO audit_events (account, rotation_id, kind, actor, detail)
         SELECT $1, $2, $4, 'pgrotate', $5 FROM acc)
       SELECT count(*)::int AS n FROM acc`,
  /** The newest sample of every account whose previous role is not finally checked. */
  previousRoleSessions:
    'SELECT account, role, sessions, sampled_at FROM previous_role_usage WHERE final_at IS NULL ORDER BY account',

  // --- security audits (audit-run-store.ts) ---------------------------------------------------

  /** Whether target $1 has any stored run. */
  auditRunExists: 'SELECT 1 FROM audit_runs WHERE target = $1 LIMIT 1',
  /** Store target $1's run by $2 with report $3. */
  insertAuditRun: 'INSERT INTO audit_runs (target, actor, report) VALUES ($1, $2, $3) RETURNING id::text AS id',
  /** Target $1's open findings, locked for the run's transaction. */
  openFindings:
    'SELECT id::text AS id, "check", subject, severity, message, fix FROM audit_findings WHERE target = $1 AND resolved_at IS NULL FOR UPDATE',
  /** Open finding $1 seen again by run $2, with its current text. */
  refreshFinding: 'UPDATE audit_findings SET last_run_id = $2, severity = $3, message = $4, fix = $5 WHERE id = $1',
  /** A finding first seen by run $7. */
  openFinding: `INSERT INTO audit_findings (target, "check", subject, severity, message, fix, first_run_id, last_run_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
           ON CONFLICT DO NOTHING`,
  /** Findings $1 no longer seen by run $2. */
  resolveFindings:
    'UPDATE audit_findings SET resolved_at = clock_timestamp(), last_run_id = $2 WHERE id = ANY($1::bigint[])',
  /** Target $1's newest run. */
  latestAuditRun:
    'SELECT id::text AS id, at, actor, report FROM audit_runs r WHERE target = $1 ORDER BY r.id DESC LIMIT 1',
  /** Open findings per target and severity. */
  openFindingCounts:
    'SELECT target, severity, count(*)::int AS n FROM audit_findings WHERE resolved_at IS NULL GROUP BY 1, 2 ORDER BY 1, 2',
  /** Each target's last run time. */
  lastAuditRuns: 'SELECT target, max(at) AS at FROM audit_runs GROUP BY 1 ORDER BY 1',
  /** Claim target $1's audit if due, pushing its next run $2 ms ahead; a row back for the one claimer. */
  claimAudit: `INSERT INTO audit_schedule AS a (target, next_run_at) VALUES ($1, clock_timestamp() + make_interval(secs => $2 / 1000.0))
       ON CONFLICT (target) DO UPDATE SET next_run_at = EXCLUDED.next_run_at WHERE a.next_run_at <= clock_timestamp()
       RETURNING 1`,

  // --- the webhook outbox (outbox-queries.ts) -------------------------------------------------

  /** Make the trigger's subscriptions exactly $1 (a JSON object: webhook key to audit event kinds), writing only changes. */
  syncSubscriptions: `WITH wanted AS (SELECT key AS webhook, ARRAY(SELECT jsonb_array_elements_text(value)) AS events FROM jsonb_each($1::jsonb)),
       gone AS (DELETE FROM webhook_subscriptions WHERE webhook NOT IN (SELECT webhook FROM wanted))
     INSERT INTO webhook_subscriptions AS s (webhook, events) SELECT webhook, events FROM wanted
     ON CONFLICT (webhook) DO UPDATE SET events = EXCLUDED.events, updated_at = now()
     WHERE s.events IS DISTINCT FROM EXCLUDED.events`,
  /** The newest outbox row's id (0 when empty). */
  outboxHighWater: 'SELECT COALESCE(max(id), 0)::text AS id FROM webhook_outbox',
  /** Alerts $1..: one row per (webhook $1[i], alert i) with ordering, event, account, target, rotation, message, detail, time. */
  insertOutboxAlerts: `INSERT INTO webhook_outbox (webhook, ordering, event, account, target, rotation_id, message, detail, at)
       SELECT w, o, e, a, t, r, m, d, x
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::text[], $8::jsonb[], $9::timestamptz[])
              WITH ORDINALITY AS u(w, o, e, a, t, r, m, d, x, n)
        ORDER BY n`,
  /**
   * Lease at most $2 deliverable rows of webhooks $1 for $3 ms: due, not leased, and the oldest
   * undelivered row of their (webhook, ordering), so each account's deliveries go in order even
   * with several processes sending. With the rotation and account facts a payload carries.
   */
  claimOutbox: `WITH cand AS (
         SELECT o.id, o.rotation_id, o.account FROM webhook_outbox o
          WHERE o.delivered_at IS NULL AND o.next_attempt_at <= clock_timestamp()
            AND (o.lease_until IS NULL OR o.lease_until < clock_timestamp())
            AND o.webhook = ANY($1::text[])
            AND NOT EXISTS (SELECT 1 FROM webhook_outbox p
                             WHERE p.webhook = o.webhook AND p.ordering = o.ordering AND p.delivered_at IS NULL AND p.id < o.id)
          ORDER BY o.next_attempt_at, o.id LIMIT $2
          FOR UPDATE SKIP LOCKED)
       UPDATE webhook_outbox o SET lease_until = clock_timestamp() + $3::double precision * interval '1 millisecond',
           attempts = o.attempts + 1
         FROM cand LEFT JOIN rotations r ON r.id = cand.rotation_id LEFT JOIN accounts a ON a.name = cand.account
        WHERE o.id = cand.id
       RETURNING o.id::text AS id, o.webhook, o.event, o.account, COALESCE(o.target, a.target) AS target, o.rotation_id,
         o.audit_event_id::text AS audit_event_id, o.message, o.detail, o.at, o.created_at, o.attempts, o.failing_since,
         r.target_role, r.previous_role, r.started_at, r.finished_at, r.old_credential_expires_at,
         floor(extract(epoch FROM clock_timestamp() - o.created_at) * 1000)::bigint AS age_ms`,
  /** Outbox row $1 was delivered. */
  outboxDelivered:
    'UPDATE webhook_outbox SET delivered_at = clock_timestamp(), lease_until = NULL, last_error = NULL WHERE id = $1',
  /** Outbox row $1 failed with $2: tried again in $3 ms. */
  outboxRetry: `UPDATE webhook_outbox SET lease_until = NULL, last_error = $2,
       next_attempt_at = clock_timestamp() + $3::double precision * interval '1 millisecond'
     WHERE id = $1 AND delivered_at IS NULL`,
  /** Mark outbox row $1 failing; a row back only for the first to do so (it alerts, once). */
  outboxFailing:
    'UPDATE webhook_outbox SET failing_since = clock_timestamp() WHERE id = $1 AND failing_since IS NULL AND delivered_at IS NULL RETURNING 1',
  /** Undelivered rows of webhooks $1 with an id above $2 (a process's own deliveries). */
  outboxUndeliveredAfter:
    'SELECT count(*)::int AS n FROM webhook_outbox WHERE delivered_at IS NULL AND webhook = ANY($1::text[]) AND id > $2::bigint',
  /** Per webhook: undelivered rows, failing ones, the oldest failing one's time and error. */
  outboxBacklog: `SELECT webhook, count(*)::int AS pending, count(failing_since)::int AS failing,
         min(failing_since) AS failing_since,
         (array_agg(last_error ORDER BY id) FILTER (WHERE failing_since IS NOT NULL))[1] AS last_error
       FROM webhook_outbox WHERE delivered_at IS NULL GROUP BY webhook ORDER BY webhook`,
  /** Delete at most $2 rows delivered more than $1 ms ago, and undelivered ones as old of webhooks not in $3. */
  pruneOutbox: `DELETE FROM webhook_outbox WHERE id IN (
         SELECT id FROM webhook_outbox
          WHERE (delivered_at < clock_timestamp() - $1::double precision * interval '1 millisecond')
             OR (delivered_at IS NULL AND NOT (webhook = ANY($3::text[]))
                 AND created_at < clock_timestamp() - $1::double precision * interval '1 millisecond')
          LIMIT $2)`,
});

/** The name of a state statement. */
export type StateStatement = keyof typeof STATE_SQL;
