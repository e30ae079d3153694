package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// personalValues are the names and email addresses the user with id $1 has
// had, as its row, its events and its audit entries hold them: what an
// answer or a diff that mentions the user would quote. Read once, before
// anything is erased.
const personalValues = `
	SELECT coalesce(array_agg(DISTINCT v) FILTER (WHERE v <> ''), '{}')
	FROM (SELECT name FROM users WHERE id = $1
	      UNION SELECT email FROM users WHERE id = $1
	      UNION SELECT data->>'name' FROM events WHERE user_id = $1
	      UNION SELECT data->>'email' FROM events WHERE user_id = $1
	      UNION SELECT d->>f FROM audit_log, LATERAL (VALUES (before), (after)) x(d), (VALUES ('name'), ('email')) y(f)
	            WHERE target = 'user:' || $1::bigint) p(v)`

// erasure lists every place that keeps a user's personal data (its name
// and email address, past and present), and the statement that erases it
// there, in order, with the arguments its args picks from the user's id and
// personalValues. A table that starts
// keeping personal data adds its line here. Ids, event types and times
// stay: they say that something happened, not to whom.
var erasure = []struct {
	place, sql string
	args       func(id int64, values []string) []any
}{
	// An answer replayed to an Idempotency-Key retry holds the user as it
	// was. Matched as JSON strings, in the forms Go's encoder may write.
	{"idempotency records holding the user", `
		DELETE FROM idempotency_keys k
		WHERE EXISTS (
			SELECT 1
			FROM unnest($1::text[]) v, LATERAL (SELECT to_json(v)::text AS plain) j
			WHERE position(convert_to(j.plain, 'UTF8') IN k.body) > 0
			   OR position(convert_to(replace(replace(replace(j.plain, '&', '\u0026'), '<', '\u003c'), '>', '\u003e'), 'UTF8') IN k.body) > 0)`, byValues},
	// Audit diffs: the user's own entries, and any other entry whose diff
	// holds one of the names or addresses the user had.
	{"audit diffs", `
		UPDATE audit_log SET before = NULL, after = NULL
		WHERE (before IS NOT NULL OR after IS NOT NULL)
		  AND (target = 'user:' || $1::bigint
		       OR jsonb_path_exists(coalesce(before, 'null'), '$.** ? (@ == $v[*])', jsonb_build_object('v', $2::text[]))
		       OR jsonb_path_exists(coalesce(after, 'null'), '$.** ? (@ == $v[*])', jsonb_build_object('v', $2::text[])))`, byIDAndValues},
	// Queued and finished webhook deliveries carry the event they send
	// (jobs.DeliverArgs); older ones have no user_id, only the user's id.
	{"webhook delivery jobs", `
		UPDATE river_job SET args = jsonb_set(args, '{event}', (args->'event') - 'data')
		WHERE kind = 'webhook_deliver'
		  AND (args @> jsonb_build_object('event', jsonb_build_object('user_id', $1::bigint))
		       OR args @> jsonb_build_object('event', jsonb_build_object('data', jsonb_build_object('id', $1::bigint))))
		  AND args->'event' ? 'data'`, byID},
	// A failed attempt's error may quote the receiver's answer.
	{"webhook delivery records", `
		UPDATE webhook_deliveries SET error = NULL
		WHERE event_id IN (SELECT id::text FROM events WHERE user_id = $1) AND error IS NOT NULL`, byID},
	{"event payloads", `UPDATE events SET data = NULL WHERE user_id = $1 AND data IS NOT NULL`, byID},
	// Last: its trigger records the cache invalidation that drops the
	// user's entries on every instance.
	{"the user's row", `DELETE FROM users WHERE id = $1`, byID},
}

// erase removes the personal data of the user with this id from every
// place in erasure, in tx.
func erase(ctx context.Context, tx pgx.Tx, id int64) error {
	var values []string
	if err := tx.QueryRow(ctx, personalValues, id).Scan(&values); err != nil {
		return fmt.Errorf("read user %d's personal data: %w", id, err)
	}
	for _, e := range erasure {
		if _, err := tx.Exec(ctx, e.sql, e.args(id, values)...); err != nil {
			return fmt.Errorf("erase user %d from %s: %w", id, e.place, err)
		}
	}
	return nil
}

func byID(id int64, _ []string) []any               { return []any{id} }
func byValues(_ int64, values []string) []any       { return []any{values} }
func byIDAndValues(id int64, values []string) []any { return []any{id, values} }
