-- name: UserCreate :one
-- UserCreate inserts a user and returns it with its id and timestamps.
-- email_key is the address's key (package email), unique among users.
INSERT INTO users (name, email, email_key)
VALUES (@name, @email, @email_key)
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

-- Lists (UserList, UserCount) are built in store/search.go from fixed
-- fragments, one statement per combination of filters and order.

-- name: UserUpdate :one
-- UserUpdate sets the user's editable fields, bumps its version and returns it.
-- The email key changes only with the email, so a row the key migration left
-- without one (a duplicate) can still change its name.
UPDATE users
SET name = @name, email = @email,
    email_key = CASE WHEN email = @email THEN email_key ELSE @email_key END,
    version = version + 1, updated_at = now()
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
