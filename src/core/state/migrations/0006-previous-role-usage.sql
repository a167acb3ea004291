-- pgrotate migration 6: who still uses the previous login of an alternating account
--
-- One row per account in grace, for the rotation that made its previous role previous (a new
-- rotation replaces the row). The scheduler's usage sampling writes the newest sample of
-- pg_stat_activity for that role; last_used_at is the last sample that saw a session (the switch
-- when none did), which expireWhenUnused measures from. alerted_at, expired_at and final_at are
-- claimed with one UPDATE each, so an alert, an early expiry and the report of sessions that
-- outlived the expiry happen once whatever the number of processes sampling.

CREATE TABLE previous_role_usage (
  account text PRIMARY KEY,
  rotation_id uuid NOT NULL,
  target text NOT NULL,
  role text NOT NULL,
  sampled_at timestamptz NOT NULL,
  sessions integer NOT NULL,
  clients jsonb NOT NULL DEFAULT '[]'::jsonb,
  oldest_backend_start timestamptz,
  last_used_at timestamptz NOT NULL,
  alerted_at timestamptz,
  expired_at timestamptz,
  final_at timestamptz
);
-- The sampling's account list: accounts whose previous role expires, or expired recently.
CREATE INDEX accounts_old_credential_expires_idx ON accounts (old_credential_expires_at);
