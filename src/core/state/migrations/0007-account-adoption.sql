-- pgrotate migration 7: accounts: adoption of an existing working secret (onboard: adopt)
--
-- adopted_at: when pgrotate took the secret's credential as current without rotating it;
-- adopted_from: the store's last-changed time of that value (null: the store gave none), the
-- base of the first due time; adopt_refusal: why the secret could not be adopted (redacted),
-- shown by status until the account is adopted or rotated.

ALTER TABLE accounts ADD COLUMN adopted_at timestamptz, ADD COLUMN adopted_from timestamptz, ADD COLUMN adopt_refusal text;
