-- Rolling keys and per-key rate budgets.
--
-- A rolled key's successor names it in replaces: one successor per key
-- (the unique index), made with the same name and scopes, while the old key
-- keeps working until its expires_at, set to the end of the overlap.
--
-- rate_limit requests per rate_period, when set, replace the service's
-- default budgets for this key (each budget, reads and writes, counted on
-- its own).
ALTER TABLE api_keys
    ADD COLUMN replaces    text     REFERENCES api_keys (prefix),
    ADD COLUMN rate_limit  integer  CHECK (rate_limit > 0),
    ADD COLUMN rate_period interval CHECK (rate_period > interval '0'),
    ADD CONSTRAINT api_keys_rate_whole CHECK ((rate_limit IS NULL) = (rate_period IS NULL));

CREATE UNIQUE INDEX api_keys_replaces_idx ON api_keys (replaces);
