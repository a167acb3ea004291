-- pgrotate migration 1: accounts, rotations, audit events
--
-- Runs with search_path set to the state schema (see ../migrations.ts): no name here is
-- schema-qualified. Released migrations are never edited, only followed by a new file.

CREATE TABLE accounts (
  name text PRIMARY KEY,
  target text NOT NULL,
  strategy text NOT NULL,
  active_role text,
  last_rotation_id uuid,
  last_rotated_at timestamptz,
  old_credential_expires_at timestamptz,
  next_due_at timestamptz,
  last_status text,
  last_error text,
  consecutive_failures integer NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_next_due_idx ON accounts (next_due_at);

CREATE TABLE rotations (
  id uuid PRIMARY KEY,
  account text NOT NULL,
  strategy text NOT NULL,
  status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  step text NOT NULL CHECK (step IN ('created', 'staged', 'applied', 'verified', 'promoted', 'recorded')),
  target_role text NOT NULL,
  previous_role text,
  reason text,
  requested_by text,
  terminate_sessions boolean NOT NULL DEFAULT false,
  attempts integer NOT NULL DEFAULT 1,
  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz,
  applied_at timestamptz,
  old_credential_expires_at timestamptz,
  sessions_ended integer,
  error text
);
-- Invariant I3 in the schema: at most one unfinished rotation per account.
CREATE UNIQUE INDEX rotations_one_running_per_account ON rotations (account) WHERE status = 'running';
CREATE INDEX rotations_account_started_idx ON rotations (account, started_at DESC);

CREATE TABLE audit_events (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  account text,
  rotation_id uuid,
  kind text NOT NULL,
  actor text,
  detail jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_account_idx ON audit_events (account, id);
