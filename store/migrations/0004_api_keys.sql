-- API keys. Only a SHA-256 hash of each key is kept; the prefix is the
-- key's public part, which names it in lists, logs and revocation.
CREATE TABLE api_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prefix       text        NOT NULL UNIQUE CHECK (char_length(prefix) BETWEEN 4 AND 40),
    hash         bytea       NOT NULL CHECK (octet_length(hash) = 32),
    name         text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    scopes       text[]      NOT NULL CHECK (cardinality(scopes) > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);
