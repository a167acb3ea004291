-- pgrotate migration 6: reserved for the previous role's usage
--
-- Placeholder on branch h29adopt only: the runner refuses gaps, and migration 6 is another
-- branch's (h27usage). Drop this file when that branch's 0006 is merged.
SELECT 1;
