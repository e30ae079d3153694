-- Each statement names the columns it needs: name_fold, email_fold and
-- short_grams serve searches only, and would cost bytes on every row read.

-- name: UserCreateRecorded :one
-- UserCreateRecorded inserts a user together with its user.created event
-- (its id as EventRecord makes it, event_id 0 past 65536 events in one
-- transaction) and audit entry, and returns the user, the event's id and
-- the ids of the subscriptions to user.created as the statement sees them:
-- a creation's writes in one round trip. With only_unsubscribed it writes
-- nothing, and returns no row, when there are subscriptions: run on its own,
-- as its own transaction, it then leaves the creation to a transaction in
-- which deliveries can be queued. data is the event's data but for the id
-- and timestamps, which the row gives; they are written as encoding/json
-- writes a time.Time (RFC 3339 in UTC, trailing zeros of the fraction
-- dropped), as PostgreSQL writes a timestamp in JSON with a Z.
WITH s AS (
    SELECT ARRAY(SELECT w.id FROM webhooks w WHERE w.events @> ARRAY['user.created'] ORDER BY w.id)::bigint[] AS subscribers
), u AS (
    INSERT INTO users (name, email, email_key)
    SELECT @name, @email, @email_key
    FROM s
    WHERE NOT @only_unsubscribed::boolean OR cardinality(s.subscribers) = 0
    RETURNING id, name, email, version, created_at, updated_at, state, deleted_at
), e AS (
    INSERT INTO events (id, type, occurred_at, user_id, data)
    SELECT coalesce(max(ev.id) + 1, b.base), 'user.created', u.created_at, u.id,
           @data::jsonb || jsonb_build_object(
               'id', u.id,
               'created_at', (to_json(u.created_at AT TIME ZONE 'UTC') #>> '{}') || 'Z',
               'updated_at', (to_json(u.updated_at AT TIME ZONE 'UTC') #>> '{}') || 'Z')
    FROM u
    CROSS JOIN (SELECT (pg_current_xact_id()::text::bigint << 16)::bigint AS base) b
    LEFT JOIN events ev ON ev.id >= b.base AND ev.id < b.base + 65536
    GROUP BY b.base, u.id, u.created_at, u.updated_at
    HAVING coalesce(max(ev.id) + 1, b.base) < b.base + 65536
    RETURNING id
), a AS (
    INSERT INTO audit_log (actor, request_id, action, target, after)
    SELECT @actor, @request_id, 'user.created', 'user:' || u.id, @audit_after::jsonb
    FROM u
)
SELECT u.id, u.name, u.email, u.version, u.created_at, u.updated_at, u.state, u.deleted_at,
       coalesce((SELECT id FROM e), 0)::bigint AS event_id, s.subscribers
FROM u, s;

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
