package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// erasure lists every place that keeps a user's personal data (its name
// and email address, past and present), and the statement that erases it
// there, in order: each takes the user's id as $1. A table that starts
// keeping personal data adds its line here. Ids, event types and times
// stay: they say that something happened, not to whom.
var erasure = []struct{ place, sql string }{
	// First, while the events still say which names and addresses the user
	// had: an answer replayed to an Idempotency-Key retry holds the user as
	// it was. Matched as JSON strings, in the forms Go's encoder may write.
	{"idempotency records holding the user", `
		DELETE FROM idempotency_keys k
		WHERE EXISTS (
			SELECT 1
			FROM (SELECT name AS v FROM users WHERE id = $1
			      UNION SELECT email FROM users WHERE id = $1
			      UNION SELECT data->>'name' FROM events WHERE user_id = $1
			      UNION SELECT data->>'email' FROM events WHERE user_id = $1) p,
			     LATERAL (SELECT to_json(p.v)::text AS plain) j
			WHERE p.v <> ''
			  AND (position(convert_to(j.plain, 'UTF8') IN k.body) > 0
			       OR position(convert_to(replace(replace(replace(j.plain, '&', '\u0026'), '<', '\u003c'), '>', '\u003e'), 'UTF8') IN k.body) > 0))`},
	// Audit diffs: the user's own entries, and any other entry whose diff
	// holds one of the names or addresses the user had.
	{"audit diffs", `
		WITH personal AS (
			SELECT coalesce(array_agg(DISTINCT v) FILTER (WHERE v <> ''), '{}') AS v
			FROM (SELECT name FROM users WHERE id = $1::bigint
			      UNION SELECT email FROM users WHERE id = $1::bigint
			      UNION SELECT data->>'name' FROM events WHERE user_id = $1::bigint
			      UNION SELECT data->>'email' FROM events WHERE user_id = $1::bigint
			      UNION SELECT d->>f FROM audit_log, LATERAL (VALUES (before), (after)) x(d), (VALUES ('name'), ('email')) y(f)
			            WHERE target = 'user:' || $1::bigint) p(v))
		UPDATE audit_log a SET before = NULL, after = NULL
		FROM personal
		WHERE (a.before IS NOT NULL OR a.after IS NOT NULL)
		  AND (a.target = 'user:' || $1::bigint
		       OR jsonb_path_exists(coalesce(a.before, 'null'), '$.** ? (@ == $v[*])', jsonb_build_object('v', personal.v))
		       OR jsonb_path_exists(coalesce(a.after, 'null'), '$.** ? (@ == $v[*])', jsonb_build_object('v', personal.v)))`},
	// Queued and finished webhook deliveries carry the event they send
	// (jobs.DeliverArgs); older ones have no user_id, only the user's id.
	{"webhook delivery jobs", `
		UPDATE river_job SET args = jsonb_set(args, '{event}', (args->'event') - 'data')
		WHERE kind = 'webhook_deliver'
		  AND (args @> jsonb_build_object('event', jsonb_build_object('user_id', $1::bigint))
		       OR args @> jsonb_build_object('event', jsonb_build_object('data', jsonb_build_object('id', $1::bigint))))
		  AND args->'event' ? 'data'`},
	// A failed attempt's error may quote the receiver's answer.
	{"webhook delivery records", `
		UPDATE webhook_deliveries SET error = NULL
		WHERE event_id IN (SELECT id::text FROM events WHERE user_id = $1) AND error IS NOT NULL`},
	{"event payloads", `UPDATE events SET data = NULL WHERE user_id = $1 AND data IS NOT NULL`},
	// Last: its trigger records the cache invalidation that drops the
	// user's entries on every instance.
	{"the user's row", `DELETE FROM users WHERE id = $1`},
}

// erase removes the personal data of the user with this id from every
// place in erasure, in tx.
func erase(ctx context.Context, tx pgx.Tx, id int64) error {
	for _, e := range erasure {
		if _, err := tx.Exec(ctx, e.sql, id); err != nil {
			return fmt.Errorf("erase user %d from %s: %w", id, e.place, err)
		}
	}
	return nil
}
