-- The API key that made each subscription, by its public prefix, so that
-- each key's subscriptions can be counted (and capped). NULL for those made
-- without keys (authentication off) or before keys were recorded.
ALTER TABLE webhooks ADD COLUMN owner_key text;

CREATE INDEX webhooks_owner_key_idx ON webhooks (owner_key);
