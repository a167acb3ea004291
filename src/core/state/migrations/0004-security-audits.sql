-- pgrotate migration 4: scheduled security audits: runs, findings, schedule
--
-- audit_findings keeps one row per (target, check, subject) while it is open; a finding that
-- disappears gets resolved_at, and one that comes back opens a new row. audit_schedule is
-- claimed with one UPDATE, so several workers run each target's audit once per interval.

CREATE TABLE audit_runs (
  id bigserial PRIMARY KEY,
  target text NOT NULL,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor text,
  report jsonb NOT NULL
);
CREATE INDEX audit_runs_target_idx ON audit_runs (target, id DESC);

CREATE TABLE audit_findings (
  id bigserial PRIMARY KEY,
  target text NOT NULL,
  "check" text NOT NULL,
  subject text NOT NULL,
  severity text NOT NULL,
  message text NOT NULL,
  fix text NOT NULL,
  first_run_id bigint NOT NULL,
  last_run_id bigint NOT NULL,
  first_seen_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  resolved_at timestamptz
);
CREATE UNIQUE INDEX audit_findings_open ON audit_findings (target, "check", subject) WHERE resolved_at IS NULL;

CREATE TABLE audit_schedule (
  target text PRIMARY KEY,
  next_run_at timestamptz NOT NULL
);
