-- name: EventsAfter :many
-- EventsAfter returns up to row_limit events after the id after, oldest
-- first, of the types given (all when none), of the user given and since
-- the time given (all when NULL), and on every row (alone when none match) the horizon, the
-- lowest id a transaction still in flight could write, and the id the log
-- starts after, both of the same snapshot as the events. Only events below
-- the horizon are returned: no event can later appear below one returned,
-- and an id below it that is not returned never will be.
SELECT h.horizon, h.log_start, e.id, e.type, e.occurred_at, e.user_id, e.data, e.changed
FROM (SELECT event_horizon() AS horizon,
             (SELECT trimmed_upto FROM event_log) AS log_start) h
LEFT JOIN events e
    ON e.id > @after::bigint
   AND e.id < h.horizon
   AND (cardinality(@types::text[]) = 0 OR e.type = ANY (@types::text[]))
   AND (sqlc.narg('user_id')::bigint IS NULL OR e.user_id = sqlc.narg('user_id')::bigint)
   AND (sqlc.narg('since')::timestamptz IS NULL OR e.occurred_at >= sqlc.narg('since')::timestamptz)
ORDER BY e.id
LIMIT @row_limit::bigint;

-- name: EventGet :one
-- EventGet returns one event, if readers may see it yet.
SELECT id, type, occurred_at, user_id, data, changed FROM events
WHERE id = @id
  AND id < event_horizon();

-- name: EventsEnd :one
-- EventsEnd returns the id up to which every event that will ever exist
-- is visible now.
SELECT (event_horizon() - 1)::bigint;

-- name: EventsTrim :execrows
-- EventsTrim deletes up to row_limit of the oldest events, among those up
-- to the last one that occurred before the last retention_seconds, and
-- moves the log's start past them.
WITH doomed AS (
    SELECT id FROM events
    WHERE id <= (SELECT max(id) FROM events WHERE occurred_at < now() - make_interval(secs => @retention_seconds::float8))
    ORDER BY id
    LIMIT @row_limit::bigint
), moved AS (
    UPDATE event_log SET trimmed_upto = greatest(trimmed_upto, (SELECT max(id) FROM doomed))
    WHERE EXISTS (SELECT 1 FROM doomed)
)
DELETE FROM events WHERE id IN (SELECT id FROM doomed);

-- name: EventRecord :one
-- EventRecord appends a user change's event in the current transaction, and
-- its audit entry, and returns the event's id and the ids of the
-- subscriptions to its type as the transaction sees them: what every change
-- writes besides its row, in one round trip. An event's id is the
-- transaction's id shifted left by 16 bits, plus one for each event the
-- transaction wrote before (see migration 0010); past 65536 events in one
-- transaction nothing is written and event_id is 0.
WITH e AS (
    INSERT INTO events (id, type, occurred_at, user_id, data, changed)
    SELECT coalesce(max(ev.id) + 1, b.base), @type, @occurred_at, @user_id, @data::jsonb, sqlc.narg('changed')::text[]
    FROM (SELECT (pg_current_xact_id()::text::bigint << 16)::bigint AS base) b
    LEFT JOIN events ev ON ev.id >= b.base AND ev.id < b.base + 65536
    GROUP BY b.base
    HAVING coalesce(max(ev.id) + 1, b.base) < b.base + 65536
    RETURNING id
), a AS (
    INSERT INTO audit_log (actor, request_id, action, target, before, after)
    SELECT @actor, @request_id, @type, @target, sqlc.narg('before')::jsonb, sqlc.narg('after')::jsonb
    FROM e
)
SELECT coalesce((SELECT id FROM e), 0)::bigint AS event_id,
       ARRAY(SELECT w.id FROM webhooks w WHERE w.events @> ARRAY[@type::text] ORDER BY w.id)::bigint[] AS subscribers;
