-- Users. The email is kept as given; uniqueness ignores case, so
-- "Ada@example.com" and "ada@example.com" cannot both exist.
CREATE TABLE users (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    email      text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    -- version counts the row's changes; it is the ETag, and If-Match compares
    -- against it. It only ever grows.
    version    bigint      NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
