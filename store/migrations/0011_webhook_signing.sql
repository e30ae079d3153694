-- Deliveries are signed as Standard Webhooks specifies: the key is the
-- base64 that follows "whsec_" in the secret. A secret of the earlier scheme
-- keyed the HMAC with its own bytes, so it becomes "whsec_" followed by the
-- base64 of those bytes: the same key, and a value its receiver can work out
-- from the secret it already holds.
ALTER TABLE webhooks DROP CONSTRAINT webhooks_secret_check;

UPDATE webhooks
SET secret = 'whsec_' || translate(encode(convert_to(secret, 'UTF8'), 'base64'), E'\n', '');

ALTER TABLE webhooks ADD CONSTRAINT webhooks_secret_check
    CHECK (secret ~ '^whsec_[A-Za-z0-9+/]+={0,2}$' AND char_length(secret) <= 300);

-- After a rotation the secret it replaced still signs deliveries, beside the
-- new one, until previous_secret_until, so that receivers can switch over.
ALTER TABLE webhooks
    ADD COLUMN previous_secret       text,
    ADD COLUMN previous_secret_until timestamptz;
