-- name: InvalidationsSince :many
-- InvalidationsSince returns up to row_limit of the invalidations recorded
-- by transactions with an id of at least since, past the row after_id,
-- made within the last within_seconds, in id order, and (on every row, and
-- alone when none match) the xmin of the statement's snapshot: every
-- transaction below it had ended when the rows were read, so a later call
-- with since = horizon misses none that commit afterwards.
SELECT h.horizon, i.id, i.tx, i.key, i.version
FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon) h
LEFT JOIN cache_invalidations i
    ON i.tx >= @since::bigint
   AND i.id > @after_id::bigint
   AND i.created_at > now() - make_interval(secs => @within_seconds::float8)
ORDER BY i.id
LIMIT @row_limit::bigint;

-- name: InvalidationsTrim :execrows
-- InvalidationsTrim deletes up to row_limit invalidations made before the
-- last within_seconds.
DELETE FROM cache_invalidations
WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM cache_invalidations
    WHERE created_at <= now() - make_interval(secs => @within_seconds::float8)
    ORDER BY created_at
    LIMIT @row_limit::bigint
    FOR UPDATE SKIP LOCKED));
