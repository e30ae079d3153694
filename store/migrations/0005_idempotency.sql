-- Answers to requests sent with an Idempotency-Key, written in the same
-- transaction as the request's effect: a record exists if and only if its
-- effect committed. Keys are scoped to the API key that sent them ('' before
-- authentication exists). Only successful answers are stored.
CREATE TABLE idempotency_keys (
    scope       text        NOT NULL,
    key         text        NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    -- SHA-256 of the method, path and body: the same key with another
    -- request is refused rather than answered with this one's response.
    fingerprint bytea       NOT NULL CHECK (length(fingerprint) = 32),
    status      smallint    NOT NULL CHECK (status BETWEEN 200 AND 299),
    headers     jsonb       NOT NULL,
    body        bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Past this, the record is treated as absent, replaced by the next use
    -- of the key, and deleted by the periodic clean-up.
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);
