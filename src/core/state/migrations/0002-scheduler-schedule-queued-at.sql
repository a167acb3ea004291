-- pgrotate migration 2: scheduler: planned schedule, last queued time
--
-- schedule: what next_due_at was computed from, so a changed schedule in the config is noticed.
-- queued_at: when a tick last queued the account, so later ticks do not offer it again (until a
-- re-offer interval passes, in case the queue lost it). The tick uses accounts_next_due_idx
-- from migration 1.

ALTER TABLE accounts ADD COLUMN schedule text, ADD COLUMN queued_at timestamptz;
