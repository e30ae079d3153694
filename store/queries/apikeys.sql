-- name: APIKeyCreate :one
-- APIKeyCreate stores a new key's hash and description.
INSERT INTO api_keys (prefix, hash, name, scopes, expires_at)
VALUES (@prefix, @hash, @name, @scopes::text[], sqlc.narg(expires_at))
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
