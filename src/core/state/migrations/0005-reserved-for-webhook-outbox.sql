-- pgrotate migration 5: reserved for the webhook outbox
--
-- Placeholder on branch h27usage only: the runner refuses gaps, and migration 5 is the webhook
-- outbox of another branch. Drop this file when that branch's 0005 is merged.
SELECT 1;
