-- Each statement names the columns it needs: name_fold, email_fold and
-- short_grams serve searches only, and would cost bytes on every row read.

-- name: UserCreate :one
-- UserCreate inserts a user and returns it with its id and timestamps.
-- email_key is the address's key (package email), unique among users.
INSERT INTO users (name, email, email_key)
VALUES (@name, @email, @email_key)
RETURNING id, name, email, version, created_at, updated_at, state, deleted_at;

-- name: UserGet :one
-- UserGet returns the user with this id, whatever its state.
SELECT id, name, email, version, created_at, updated_at, state, deleted_at FROM users
WHERE id = @id;

-- name: UserGetForUpdate :one
-- UserGetForUpdate returns the user with this id and locks its row until the
-- transaction ends, so a read-check-write cannot interleave with another.
SELECT id, name, email, version, created_at, updated_at, state, deleted_at FROM users
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
RETURNING id, name, email, version, created_at, updated_at, state, deleted_at;

-- name: UserSetState :one
-- UserSetState moves the user to a lifecycle state, bumps its version and
-- returns it. deleted_at is when it entered "deleted", and only then set.
UPDATE users
SET state = @state::text,
    deleted_at = CASE WHEN @state::text = 'deleted' THEN now() END,
    version = version + 1, updated_at = now()
WHERE id = @id
RETURNING id, name, email, version, created_at, updated_at, state, deleted_at;

-- name: UserGetMany :many
-- UserGetMany returns the users with these ids, in id order; unknown ids are
-- left out.
SELECT id, name, email, version, created_at, updated_at, state, deleted_at FROM users
WHERE id = ANY(@ids::bigint[])
ORDER BY id;

-- name: UserDeletedWithEmail :one
-- UserDeletedWithEmail returns the id of the deleted user that holds this
-- email key, if one does.
SELECT id FROM users
WHERE email_key = @email_key AND state = 'deleted';

-- name: UsersDeletedBefore :many
-- UsersDeletedBefore returns up to row_limit ids of users deleted before
-- the time given, longest deleted first.
SELECT id FROM users
WHERE deleted_at < @before
ORDER BY deleted_at
LIMIT @row_limit::bigint;

-- name: UserGetProfile :one
-- UserGetProfile returns the user's derived profile data.
SELECT email_normalized, profile_score, profile_computed_at FROM users
WHERE id = @id;

-- name: UserSetProfile :exec
-- UserSetProfile stores the user's derived profile data. It leaves version
-- and updated_at alone: derived data is not an edit.
UPDATE users
SET email_normalized = @email_normalized, profile_score = @profile_score, profile_computed_at = now()
WHERE id = @id;
