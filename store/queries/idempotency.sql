-- name: IdempotencyLock :one
-- IdempotencyLock takes the key's lock until the transaction ends, or
-- returns false at once when another transaction holds it.
SELECT pg_try_advisory_xact_lock(@lock_key::bigint) AS locked;

-- name: IdempotencyGet :one
-- IdempotencyGet returns the key's record unless it has expired.
SELECT * FROM idempotency_keys
WHERE scope = @scope AND key = @key AND expires_at > now();

-- name: IdempotencyPut :execrows
-- IdempotencyPut stores the key's record, replacing an expired one. It
-- changes no row when an unexpired record exists.
INSERT INTO idempotency_keys (scope, key, fingerprint, status, headers, body, expires_at)
VALUES (@scope, @key, @fingerprint, @status, @headers, @body, now() + make_interval(secs => @ttl_seconds::float8))
ON CONFLICT (scope, key) DO UPDATE
SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status, headers = EXCLUDED.headers,
    body = EXCLUDED.body, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
WHERE idempotency_keys.expires_at <= now();

-- name: IdempotencyDeleteExpired :execrows
-- IdempotencyDeleteExpired deletes up to row_limit expired records.
DELETE FROM idempotency_keys
WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM idempotency_keys
    WHERE expires_at <= now()
    ORDER BY expires_at
    LIMIT @row_limit::bigint
    FOR UPDATE SKIP LOCKED));
