-- name: UserCreate :one
-- UserCreate inserts a user and returns it with its id and timestamps.
INSERT INTO users (name, email)
VALUES (@name, @email)
RETURNING *;

-- name: UserGet :one
-- UserGet returns the user with this id.
SELECT * FROM users
WHERE id = @id;

-- name: UserGetForUpdate :one
-- UserGetForUpdate returns the user with this id and locks its row until the
-- transaction ends, so a read-check-write cannot interleave with another.
SELECT * FROM users
WHERE id = @id
FOR UPDATE;

-- name: UserListAfter :many
-- UserListAfter returns up to row_limit users whose id is greater than
-- after_id, in id order, optionally only the one with this email (any case).
SELECT * FROM users
WHERE id > @after_id
  AND (sqlc.narg('email')::text IS NULL OR lower(email) = lower(sqlc.narg('email')::text))
ORDER BY id
LIMIT @row_limit::bigint;

-- name: UserListOffset :many
-- UserListOffset returns up to row_limit users in id order, skipping the first
-- row_offset, optionally only the one with this email (any case).
SELECT * FROM users
WHERE sqlc.narg('email')::text IS NULL OR lower(email) = lower(sqlc.narg('email')::text)
ORDER BY id
LIMIT @row_limit::bigint OFFSET @row_offset::bigint;

-- name: UserUpdate :one
-- UserUpdate sets the user's editable fields, bumps its version and returns it.
UPDATE users
SET name = @name, email = @email, version = version + 1, updated_at = now()
WHERE id = @id
RETURNING *;

-- name: UserDelete :one
-- UserDelete deletes the user with this id and returns the row it deleted.
DELETE FROM users
WHERE id = @id
RETURNING *;

-- name: UserGetMany :many
-- UserGetMany returns the users with these ids, in id order; unknown ids are
-- left out.
SELECT * FROM users
WHERE id = ANY(@ids::bigint[])
ORDER BY id;

-- name: UserSetProfile :exec
-- UserSetProfile stores the user's derived profile data. It leaves version
-- and updated_at alone: derived data is not an edit.
UPDATE users
SET email_normalized = @email_normalized, profile_score = @profile_score, profile_computed_at = now()
WHERE id = @id;
