-- name: WebhookCreate :one
-- WebhookCreate stores a subscription and returns it.
INSERT INTO webhooks (url, events, secret, owner_key)
VALUES (@url, @events::text[], @secret, sqlc.narg('owner_key'))
RETURNING *;

-- name: WebhookOwnerLock :exec
-- WebhookOwnerLock makes one key's subscriptions wait for each other until
-- the transaction ends, so that counting them and adding one is one step.
SELECT pg_advisory_xact_lock(hashtextextended('webhooks:' || @owner_key::text, 0));

-- name: WebhookCountByOwner :one
-- WebhookCountByOwner counts the subscriptions a key made.
SELECT count(*) FROM webhooks
WHERE owner_key = @owner_key::text;

-- name: WebhookGet :one
-- WebhookGet returns the subscription with this id.
SELECT * FROM webhooks
WHERE id = @id;

-- name: WebhookList :many
-- WebhookList returns every subscription, in id order.
SELECT * FROM webhooks
ORDER BY id;

-- name: WebhookDelete :one
-- WebhookDelete deletes a subscription, and with it its delivery log, and
-- returns it as it was.
DELETE FROM webhooks
WHERE id = @id
RETURNING *;

-- name: WebhookListForEvent :many
-- WebhookListForEvent returns the ids of the subscriptions to an event type.
SELECT id FROM webhooks
WHERE events @> ARRAY[@event_type::text]
ORDER BY id;

-- name: WebhookDeliveryCreate :exec
-- WebhookDeliveryCreate records one delivery attempt.
INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, attempt, status_code, latency_ms, error)
VALUES (@webhook_id, @event_id, @event_type, @attempt, sqlc.narg('status_code'), @latency_ms, sqlc.narg('error'));

-- name: WebhookDeliveryList :many
-- WebhookDeliveryList returns a subscription's latest delivery attempts, newest first.
SELECT * FROM webhook_deliveries
WHERE webhook_id = @webhook_id
ORDER BY id DESC
LIMIT @row_limit::bigint;

-- name: WebhookRotateSecret :one
-- WebhookRotateSecret makes secret the subscription's secret, and keeps the
-- one it replaces signing beside it until previous_until.
UPDATE webhooks
SET previous_secret = secret, previous_secret_until = @previous_until, secret = @secret
WHERE id = @id
RETURNING *;
-- name: WebhookDeliveryGet :one
-- WebhookDeliveryGet returns one of a subscription's delivery attempts.
SELECT * FROM webhook_deliveries
WHERE webhook_id = @webhook_id AND id = @id;
