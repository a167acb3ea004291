-- pgrotate migration 3: accounts: warnings of the last successful rotation
--
-- What a person should act on although the rotation succeeded (a VALID UNTIL before the next
-- due time, a role at its connection limit); shown by status, cleared by the next success.

ALTER TABLE accounts ADD COLUMN warnings text[] NOT NULL DEFAULT '{}';
