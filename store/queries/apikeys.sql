-- name: APIKeyCreate :one
-- APIKeyCreate stores a new key's hash and description.
INSERT INTO api_keys (prefix, hash, name, scopes, expires_at, replaces, rate_limit, rate_period)
VALUES (@prefix, @hash, @name, @scopes::text[], sqlc.narg(expires_at), sqlc.narg(replaces),
        sqlc.narg(rate_limit), make_interval(secs => sqlc.narg(rate_period_seconds)::float8))
RETURNING *;

-- name: APIKeyLock :one
-- APIKeyLock returns the key with this prefix and locks it until the
-- transaction ends, with the prefix of its successor if it was rolled.
SELECT k.*, s.prefix AS successor
FROM api_keys k
LEFT JOIN api_keys s ON s.replaces = k.prefix
WHERE k.prefix = @prefix
FOR UPDATE OF k;

-- name: APIKeyExpireBy :one
-- APIKeyExpireBy makes a key expire within seconds from now, unless it
-- expires sooner already.
UPDATE api_keys
SET expires_at = least(coalesce(expires_at, 'infinity'), now() + make_interval(secs => @seconds::float8))
WHERE prefix = @prefix
RETURNING *;

-- name: APIKeyGet :one
-- APIKeyGet returns the key with this prefix, revoked or not.
SELECT * FROM api_keys
WHERE prefix = @prefix;

-- name: APIKeyList :many
-- APIKeyList returns every key, oldest first.
SELECT * FROM api_keys
ORDER BY id;

-- name: APIKeyRevoke :one
-- APIKeyRevoke marks a key revoked; a key revoked before keeps its time.
UPDATE api_keys
SET revoked_at = coalesce(revoked_at, now())
WHERE prefix = @prefix
RETURNING *;

-- name: APIKeyTouch :exec
-- APIKeyTouch records that a key was used.
UPDATE api_keys
SET last_used_at = now()
WHERE prefix = @prefix AND (last_used_at IS NULL OR last_used_at < now());
