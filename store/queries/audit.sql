-- name: AuditCreate :exec
-- AuditCreate records one change, in the change's transaction.
INSERT INTO audit_log (actor, request_id, action, target, before, after)
VALUES (@actor, @request_id, @action, @target, sqlc.narg('before')::jsonb, sqlc.narg('after')::jsonb);

-- name: AuditList :many
-- AuditList returns up to row_limit entries older than the id before (all
-- when NULL), newest first, of the actor and target given (any when NULL).
SELECT id, occurred_at, actor, request_id, action, target, before, after
FROM audit_log
WHERE (sqlc.narg('before_id')::bigint IS NULL OR id < sqlc.narg('before_id')::bigint)
  AND (sqlc.narg('actor')::text IS NULL OR actor = sqlc.narg('actor')::text)
  AND (sqlc.narg('target')::text IS NULL OR target = sqlc.narg('target')::text)
ORDER BY id DESC
LIMIT @row_limit::bigint;

-- name: AuditTrim :execrows
-- AuditTrim deletes up to row_limit of the entries older than
-- retention_seconds, oldest first.
DELETE FROM audit_log
WHERE id IN (
    SELECT id FROM audit_log
    WHERE occurred_at < now() - make_interval(secs => @retention_seconds::float8)
    ORDER BY occurred_at
    LIMIT @row_limit::bigint
);
