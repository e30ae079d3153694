package store

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5/pgtype"

	"userapi/store/internal/dbsqlc"
)

// AuditEntry is one change in the audit log: who made it, in which request,
// what it did to what, and the fields it changed.
type AuditEntry struct {
	ID         int64
	OccurredAt time.Time
	// Actor is an API key's prefix, sub:<subject> for an access token,
	// ActorCLI for the operator's commands, ActorSystem for the service's
	// own work.
	Actor     string
	RequestID string
	// Action is what happened, such as user.updated or key.revoked: for a
	// user, the type of the change's event.
	Action string
	// Target is what changed, as kind:id (user:42, webhook:7, key:uak_…).
	Target string
	// Before and After are the changed fields as JSON objects, old and new;
	// nil when there are none (a creation has no Before, a removal no
	// After) or when they were erased.
	Before, After json.RawMessage
}

// Actors that are not API callers.
const (
	// ActorCLI is the operator's command line (userapi keys ...).
	ActorCLI = "cli"
	// ActorSystem is a change made with no actor in its context.
	ActorSystem = "system"
)

// Audit actions other than user changes, whose action is their event type.
const (
	AuditWebhookCreated       = "webhook.created"
	AuditWebhookDeleted       = "webhook.deleted"
	AuditWebhookSecretRotated = "webhook.secret_rotated"
	AuditKeyCreated           = "key.created"
	AuditKeyRevoked           = "key.revoked"
	AuditKeyRolled            = "key.rolled"
)

type actorKey struct{}

type actorInfo struct{ actor, requestID string }

// WithActor returns a context whose changes the audit log attributes to
// actor, in the request with this id (empty outside a request).
func WithActor(ctx context.Context, actor, requestID string) context.Context {
	return context.WithValue(ctx, actorKey{}, actorInfo{actor: actor, requestID: requestID})
}

// actorOf is who WithActor named, or ActorSystem.
func actorOf(ctx context.Context) actorInfo {
	if a, ok := ctx.Value(actorKey{}).(actorInfo); ok && a.actor != "" {
		return a
	}
	return actorInfo{actor: ActorSystem}
}

// diff holds the fields a change replaced and their new values.
type diff struct{ before, after map[string]any }

// encode is d as the audit log stores it: each side as JSON, nil when absent.
func (d diff) encode() (before, after []byte, err error) {
	if before, err = jsonOrNil(d.before); err != nil {
		return nil, nil, err
	}
	after, err = jsonOrNil(d.after)
	return before, after, err
}

// recordAudit writes one entry with q, in the change's transaction.
func recordAudit(ctx context.Context, q *dbsqlc.Queries, action, target string, d diff) error {
	before, after, err := d.encode()
	if err != nil {
		return err
	}
	who := actorOf(ctx)
	return q.AuditCreate(ctx, dbsqlc.AuditCreateParams{
		Actor: who.actor, RequestID: who.requestID, Action: action, Target: target, Before: before, After: after,
	})
}

func jsonOrNil(m map[string]any) ([]byte, error) {
	if m == nil {
		return nil, nil
	}
	return json.Marshal(m)
}

// UserTarget names a user in the audit log.
func UserTarget(id int64) string { return fmt.Sprintf("user:%d", id) }

// WebhookTarget names a subscription in the audit log.
func WebhookTarget(id int64) string { return fmt.Sprintf("webhook:%d", id) }

// KeyTarget names an API key in the audit log.
func KeyTarget(prefix string) string { return "key:" + prefix }

// userDiff is what a user change changed, for its audit entry (written with
// its event, see recordChange): the action is the event's type and the diff
// compares ev.Before with ev.User field by field, so a new kind of change is
// audited as it is. A creation has only after; a
// deletion whose row went has only before; any other change has the fields
// that differ (none for an update that changed nothing).
func userDiff(ev UserEvent) diff {
	after := userFields(ev.User)
	if ev.Before == nil {
		return diff{after: after}
	}
	before := userFields(*ev.Before)
	if ev.Type == UserDeleted && reflect.DeepEqual(before, after) {
		return diff{before: before}
	}
	d := diff{before: map[string]any{}, after: map[string]any{}}
	for k, v := range after {
		if !reflect.DeepEqual(before[k], v) {
			d.before[k], d.after[k] = before[k], v
		}
	}
	return d
}

// userBookkeeping are the fields of User every change moves or none does;
// the entry's target and time say as much.
var userBookkeeping = map[string]bool{"ID": true, "Version": true, "CreatedAt": true, "UpdatedAt": true}

// userFields are u's fields by their API names (snake_case), bookkeeping
// left out. Reflection, so that a field added to User is audited too.
func userFields(u User) map[string]any {
	v := reflect.ValueOf(u)
	out := map[string]any{}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() || userBookkeeping[f.Name] {
			continue
		}
		out[snakeCase(f.Name)] = v.Field(i).Interface()
	}
	return out
}

// snakeCase turns a Go field name (DeletedAt) into the API's (deleted_at).
func snakeCase(name string) string {
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 && !unicode.IsUpper(rune(name[i-1])) {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// AuditFilter selects a page of the audit log, newest first.
type AuditFilter struct {
	// Actor and Target, when not empty, keep only entries by this actor
	// and of this target.
	Actor, Target string
	// After, when not zero, starts the page after this entry: with older
	// entries (keyset paging).
	After int64
	// Limit is the page size, at least 1.
	Limit int
}

// AuditPage is one page of the audit log. Next is the After of the next
// page; zero when this is the last.
type AuditPage struct {
	Entries []AuditEntry
	Next    int64
}

// AuditLog is what the HTTP layer needs from the audit log.
type AuditLog interface {
	// List returns one page of entries, newest first.
	List(ctx context.Context, f AuditFilter) (AuditPage, error)
}

// Audit is the PostgreSQL audit log. Changes write to it themselves (see
// recordAudit) and a purge erases from it (erase.go); this reads and trims.
type Audit struct {
	db DB
	q  *dbsqlc.Queries
}

var _ AuditLog = (*Audit)(nil)

// NewAudit returns the audit log on db.
func NewAudit(db DB) *Audit {
	return &Audit{db: db, q: dbsqlc.New(db)}
}

// List returns up to f.Limit entries older than f.After, newest first.
func (s *Audit) List(ctx context.Context, f AuditFilter) (_ AuditPage, err error) {
	defer wrap(&err, "Audit.List")
	limit := max(f.Limit, 1)
	params := dbsqlc.AuditListParams{
		BeforeID: pgtype.Int8{Int64: f.After, Valid: f.After > 0},
		Actor:    pgtype.Text{String: f.Actor, Valid: f.Actor != ""},
		Target:   pgtype.Text{String: f.Target, Valid: f.Target != ""},
		RowLimit: int64(limit) + 1, // one more tells whether a next page exists
	}
	rows, err := queries(ctx, s.db, s.q).AuditList(ctx, params)
	if err != nil {
		return AuditPage{}, translate(err)
	}
	var page AuditPage
	if len(rows) > limit {
		rows = rows[:limit]
		page.Next = rows[limit-1].ID
	}
	page.Entries = make([]AuditEntry, len(rows))
	for i, r := range rows {
		page.Entries[i] = AuditEntry{
			ID: r.ID, OccurredAt: r.OccurredAt.UTC(), Actor: r.Actor, RequestID: r.RequestID,
			Action: r.Action, Target: r.Target, Before: r.Before, After: r.After,
		}
	}
	return page, nil
}

// Trim deletes up to limit entries older than retention, oldest first, and
// returns how many it deleted.
func (s *Audit) Trim(ctx context.Context, retention time.Duration, limit int64) (_ int64, err error) {
	defer wrap(&err, "Audit.Trim")
	n, err := s.q.AuditTrim(ctx, dbsqlc.AuditTrimParams{RetentionSeconds: retention.Seconds(), RowLimit: limit})
	return n, translate(err)
}
