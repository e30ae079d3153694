package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"userapi/store/internal/dbsqlc"
)

// Webhook is a subscription: deliver these event types to this URL, signed
// with this secret.
type Webhook struct {
	ID        int64
	URL       string
	Events    []string
	Secret    string
	CreatedAt time.Time
	// PreviousSecret is the secret the last rotation replaced; it signs
	// beside Secret until PreviousUntil. Empty when there is none.
	PreviousSecret string
	PreviousUntil  time.Time
}

// SigningSecrets are the secrets that sign a delivery made at now: the
// current one, and the one it replaced while their overlap lasts.
func (w Webhook) SigningSecrets(now time.Time) []string {
	if w.PreviousSecret != "" && now.Before(w.PreviousUntil) {
		return []string{w.Secret, w.PreviousSecret}
	}
	return []string{w.Secret}
}

// NewWebhook holds what a caller supplies to subscribe.
type NewWebhook struct {
	URL    string
	Events []string
	Secret string
	// Owner is the prefix of the API key subscribing; empty without keys.
	Owner string
	// MaxPerOwner, when positive, is how many subscriptions Owner may have.
	MaxPerOwner int
}

// ErrTooManyWebhooks means the key already has as many subscriptions as it
// may: every one of them adds a delivery to every event.
var ErrTooManyWebhooks = errors.New("the key has too many subscriptions")

// Delivery is one attempt to deliver an event to a subscriber.
type Delivery struct {
	ID        int64
	WebhookID int64
	EventID   string
	EventType string
	Attempt   int
	// StatusCode is the receiver's answer; 0 when none came (a network
	// error or a timeout).
	StatusCode int
	Latency    time.Duration
	// Error says why the attempt failed; empty when it succeeded.
	Error       string
	DeliveredAt time.Time
}

// WebhookService is what the HTTP layer needs from a subscription store.
type WebhookService interface {
	// Create stores a subscription. Returns ErrTooManyWebhooks if its owner
	// already has MaxPerOwner.
	Create(ctx context.Context, w NewWebhook) (Webhook, error)
	// Get returns one subscription. Returns ErrNotFound if there is none.
	Get(ctx context.Context, id int64) (Webhook, error)
	// List returns every subscription in id order.
	List(ctx context.Context) ([]Webhook, error)
	// Delete removes a subscription and its delivery log. Returns
	// ErrNotFound if there is none.
	Delete(ctx context.Context, id int64) error
	// Deliveries returns a subscription's latest limit delivery attempts,
	// newest first. Returns ErrNotFound if there is no such subscription.
	Deliveries(ctx context.Context, id int64, limit int) ([]Delivery, error)
	// RotateSecret makes secret the subscription's secret; the one it
	// replaces keeps signing beside it until previousUntil. Returns
	// ErrNotFound if there is no such subscription.
	RotateSecret(ctx context.Context, id int64, secret string, previousUntil time.Time) (Webhook, error)
}

// Webhooks is the PostgreSQL subscription repository.
type Webhooks struct {
	db DB
	q  *dbsqlc.Queries
}

var _ WebhookService = (*Webhooks)(nil)

// NewWebhooks returns a repository that runs on db, which may be a
// transaction.
func NewWebhooks(db DB) *Webhooks {
	return &Webhooks{db: db, q: dbsqlc.New(db)}
}

// Create stores a subscription. Returns ErrTooManyWebhooks if its owner
// already has MaxPerOwner.
func (s *Webhooks) Create(ctx context.Context, w NewWebhook) (_ Webhook, err error) {
	defer wrap(&err, "Webhooks.Create")
	params := dbsqlc.WebhookCreateParams{Url: w.URL, Events: w.Events, Secret: w.Secret, OwnerKey: pgtype.Text{String: w.Owner, Valid: w.Owner != ""}}
	var created Webhook
	err = inTx(ctx, s.db, func(q *dbsqlc.Queries) error {
		if w.Owner != "" && w.MaxPerOwner > 0 {
			if err := q.WebhookOwnerLock(ctx, w.Owner); err != nil {
				return err
			}
			n, err := q.WebhookCountByOwner(ctx, w.Owner)
			if err != nil {
				return err
			}
			if n >= int64(w.MaxPerOwner) {
				return ErrTooManyWebhooks
			}
		}
		row, err := q.WebhookCreate(ctx, params)
		if err != nil {
			return err
		}
		created = webhookFromRow(row)
		return recordAudit(ctx, q, AuditWebhookCreated, WebhookTarget(created.ID), diff{after: created.auditFields()})
	})
	return created, translate(err)
}

// auditFields are what the audit log keeps of a subscription: never its
// secrets.
func (w Webhook) auditFields() map[string]any {
	return map[string]any{"url": w.URL, "events": w.Events}
}

// Get returns one subscription. Returns ErrNotFound if there is none.
func (s *Webhooks) Get(ctx context.Context, id int64) (_ Webhook, err error) {
	defer wrap(&err, "Webhooks.Get(%d)", id)
	row, err := s.queries(ctx).WebhookGet(ctx, id)
	return webhookFromRow(row), translate(err)
}

// List returns every subscription in id order.
func (s *Webhooks) List(ctx context.Context) (_ []Webhook, err error) {
	defer wrap(&err, "Webhooks.List")
	rows, err := s.queries(ctx).WebhookList(ctx)
	if err != nil {
		return nil, translate(err)
	}
	out := make([]Webhook, len(rows))
	for i, r := range rows {
		out[i] = webhookFromRow(r)
	}
	return out, nil
}

// Delete removes a subscription and its delivery log. Returns ErrNotFound if
// there is none. Deliveries already queued for it find it gone and stop.
func (s *Webhooks) Delete(ctx context.Context, id int64) (err error) {
	defer wrap(&err, "Webhooks.Delete(%d)", id)
	return translate(inTx(ctx, s.db, func(q *dbsqlc.Queries) error {
		row, err := q.WebhookDelete(ctx, id)
		if err != nil {
			return err
		}
		return recordAudit(ctx, q, AuditWebhookDeleted, WebhookTarget(id), diff{before: webhookFromRow(row).auditFields()})
	}))
}

// RotateSecret makes secret the subscription's secret; the one it replaces
// keeps signing beside it until previousUntil (and one replaced earlier
// stops). Returns ErrNotFound if there is no such subscription.
func (s *Webhooks) RotateSecret(ctx context.Context, id int64, secret string, previousUntil time.Time) (_ Webhook, err error) {
	defer wrap(&err, "Webhooks.RotateSecret(%d)", id)
	var rotated Webhook
	err = inTx(ctx, s.db, func(q *dbsqlc.Queries) error {
		row, err := q.WebhookRotateSecret(ctx, dbsqlc.WebhookRotateSecretParams{
			ID: id, Secret: secret, PreviousUntil: pgtype.Timestamptz{Time: previousUntil, Valid: true},
		})
		if err != nil {
			return err
		}
		rotated = webhookFromRow(row)
		// The secrets themselves are never recorded: only until when the
		// replaced one signs.
		return recordAudit(ctx, q, AuditWebhookSecretRotated, WebhookTarget(id),
			diff{after: map[string]any{"previous_secret_until": rotated.PreviousUntil.UTC()}})
	})
	return rotated, translate(err)
}

// Subscribers returns the ids of the subscriptions to an event type.
func (s *Webhooks) Subscribers(ctx context.Context, eventType string) (_ []int64, err error) {
	defer wrap(&err, "Webhooks.Subscribers(%q)", eventType)
	ids, err := s.queries(ctx).WebhookListForEvent(ctx, eventType)
	return ids, translate(err)
}

// RecordDelivery logs one delivery attempt.
func (s *Webhooks) RecordDelivery(ctx context.Context, d Delivery) (err error) {
	defer wrap(&err, "Webhooks.RecordDelivery(%d)", d.WebhookID)
	return translate(s.queries(ctx).WebhookDeliveryCreate(ctx, dbsqlc.WebhookDeliveryCreateParams{
		WebhookID:  d.WebhookID,
		EventID:    d.EventID,
		EventType:  d.EventType,
		Attempt:    int32(d.Attempt),
		StatusCode: pgtype.Int4{Int32: int32(d.StatusCode), Valid: d.StatusCode != 0},
		LatencyMs:  float64(d.Latency.Microseconds()) / 1000,
		Error:      pgtype.Text{String: d.Error, Valid: d.Error != ""},
	}))
}

// Deliveries returns a subscription's latest limit delivery attempts, newest
// first. Returns ErrNotFound if there is no such subscription.
func (s *Webhooks) Deliveries(ctx context.Context, id int64, limit int) (_ []Delivery, err error) {
	defer wrap(&err, "Webhooks.Deliveries(%d)", id)
	if _, err := s.queries(ctx).WebhookGet(ctx, id); err != nil {
		return nil, translate(err)
	}
	rows, err := s.queries(ctx).WebhookDeliveryList(ctx, dbsqlc.WebhookDeliveryListParams{WebhookID: id, RowLimit: int64(limit)})
	if err != nil {
		return nil, translate(err)
	}
	out := make([]Delivery, len(rows))
	for i, r := range rows {
		out[i] = deliveryFromRow(r)
	}
	return out, nil
}

// Delivery returns one of a subscription's delivery attempts. Returns
// ErrNotFound if the subscription has none with this id.
func (s *Webhooks) Delivery(ctx context.Context, webhookID, id int64) (_ Delivery, err error) {
	defer wrap(&err, "Webhooks.Delivery(%d, %d)", webhookID, id)
	r, err := s.queries(ctx).WebhookDeliveryGet(ctx, dbsqlc.WebhookDeliveryGetParams{WebhookID: webhookID, ID: id})
	return deliveryFromRow(r), translate(err)
}

func deliveryFromRow(r dbsqlc.WebhookDelivery) Delivery {
	return Delivery{
		ID:          r.ID,
		WebhookID:   r.WebhookID,
		EventID:     r.EventID,
		EventType:   r.EventType,
		Attempt:     int(r.Attempt),
		StatusCode:  int(r.StatusCode.Int32),
		Latency:     time.Duration(r.LatencyMs * float64(time.Millisecond)),
		Error:       r.Error.String,
		DeliveredAt: r.DeliveredAt.UTC(),
	}
}

// queries run in the context's transaction when there is one to join.
func (s *Webhooks) queries(ctx context.Context) *dbsqlc.Queries { return queries(ctx, s.db, s.q) }

func webhookFromRow(r dbsqlc.Webhook) Webhook {
	return Webhook{
		ID: r.ID, URL: r.Url, Events: r.Events, Secret: r.Secret, CreatedAt: r.CreatedAt.UTC(),
		PreviousSecret: r.PreviousSecret.String, PreviousUntil: r.PreviousSecretUntil.Time,
	}
}
