package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"userapi/store/internal/dbsqlc"
)

// APIKey is what is kept of an API key: never the key itself, only its hash
// and the public prefix that names it.
type APIKey struct {
	Prefix     string
	Hash       []byte // SHA-256 of the whole key
	Name       string
	Scopes     []string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero when never used
	ExpiresAt  time.Time // zero when it never expires
	RevokedAt  time.Time // zero unless revoked
	// Replaces is the prefix of the key this one was rolled from.
	Replaces string
	// RateLimit requests per RatePeriod are the key's own budget; zero
	// when it spends the service's default.
	RateLimit  int
	RatePeriod time.Duration
}

// NewAPIKey is what is stored for a key being created.
type NewAPIKey struct {
	Prefix    string
	Hash      []byte
	Name      string
	Scopes    []string
	ExpiresAt time.Time // zero for never
	// RateLimit per RatePeriod is the key's own budget; zero for the
	// service's default.
	RateLimit  int
	RatePeriod time.Duration
}

// APIKeys is the PostgreSQL repository of API keys.
type APIKeys struct {
	db DB
	q  *dbsqlc.Queries
}

// NewAPIKeys returns a repository that runs on db.
func NewAPIKeys(db DB) *APIKeys {
	return &APIKeys{db: db, q: dbsqlc.New(db)}
}

// Create stores a key. Returns ErrConflict if its prefix is taken.
func (s *APIKeys) Create(ctx context.Context, k NewAPIKey) (_ APIKey, err error) {
	defer wrap(&err, "APIKeys.Create")
	var made APIKey
	err = inTx(ctx, s.db, func(q *dbsqlc.Queries) error {
		row, err := q.APIKeyCreate(ctx, createParams(k, ""))
		if err != nil {
			return err
		}
		made = apiKeyFromRow(row)
		return recordAudit(ctx, q, AuditKeyCreated, KeyTarget(made.Prefix), diff{after: made.auditFields()})
	})
	return made, translate(err)
}

// auditFields are what the audit log keeps of a key: never the key or its
// hash.
func (k APIKey) auditFields() map[string]any {
	f := map[string]any{"name": k.Name, "scopes": k.Scopes}
	if !k.ExpiresAt.IsZero() {
		f["expires_at"] = k.ExpiresAt
	}
	if k.RateLimit > 0 {
		f["rate_limit"], f["rate_period"] = k.RateLimit, k.RatePeriod.String()
	}
	if k.Replaces != "" {
		f["replaces"] = k.Replaces
	}
	return f
}

func createParams(k NewAPIKey, replaces string) dbsqlc.APIKeyCreateParams {
	p := dbsqlc.APIKeyCreateParams{
		Prefix: k.Prefix, Hash: k.Hash, Name: k.Name, Scopes: k.Scopes, ExpiresAt: optionalTime(k.ExpiresAt),
		Replaces: pgtype.Text{String: replaces, Valid: replaces != ""},
	}
	if k.RateLimit > 0 {
		p.RateLimit = pgtype.Int4{Int32: int32(k.RateLimit), Valid: true}
		p.RatePeriodSeconds = pgtype.Float8{Float64: k.RatePeriod.Seconds(), Valid: true}
	}
	return p
}

// Why a key cannot be rolled.
var (
	ErrKeyRolled   = errors.New("the key has been rolled already")
	ErrKeyInactive = errors.New("the key is revoked or expired")
)

// Roll stores next as the successor of the key with this prefix, with that
// key's name and scopes (and its rate budget unless next sets one), and
// makes the old key expire overlap from now (or sooner, if it expires
// sooner anyway), in one transaction. Returns the old key as it is now and
// the new one. Returns ErrNotFound if there is no such key, ErrKeyRolled
// (wrapped with the successor's prefix) if it has a successor already,
// ErrKeyInactive if it is revoked or expired, and ErrConflict if next's
// prefix is taken.
func (s *APIKeys) Roll(ctx context.Context, prefix string, next NewAPIKey, overlap time.Duration) (old, made APIKey, err error) {
	defer wrap(&err, "APIKeys.Roll")
	tx, err := Begin(ctx, s.db)
	if err != nil {
		return APIKey{}, APIKey{}, translate(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	q := dbsqlc.New(tx)
	cur, err := q.APIKeyLock(ctx, prefix)
	if err != nil {
		return APIKey{}, APIKey{}, translate(err)
	}
	switch {
	case cur.Successor.Valid:
		return APIKey{}, APIKey{}, ErrKeyRolled
	case cur.RevokedAt.Valid, cur.ExpiresAt.Valid && !cur.ExpiresAt.Time.After(time.Now()):
		return APIKey{}, APIKey{}, ErrKeyInactive
	}
	next.Name, next.Scopes = cur.Name, cur.Scopes
	if next.RateLimit == 0 && cur.RateLimit.Valid {
		next.RateLimit, next.RatePeriod = int(cur.RateLimit.Int32), intervalDuration(cur.RatePeriod)
	}
	row, err := q.APIKeyCreate(ctx, createParams(next, prefix))
	if err != nil {
		return APIKey{}, APIKey{}, translate(err)
	}
	oldRow, err := q.APIKeyExpireBy(ctx, dbsqlc.APIKeyExpireByParams{Prefix: prefix, Seconds: overlap.Seconds()})
	if err != nil {
		return APIKey{}, APIKey{}, translate(err)
	}
	old, made = apiKeyFromRow(oldRow), apiKeyFromRow(row)
	rolled := diff{before: map[string]any{"expires_at": timeOrNil(cur.ExpiresAt)},
		after: map[string]any{"expires_at": old.ExpiresAt, "successor": made.Prefix, "successor_fields": made.auditFields()}}
	if err := recordAudit(ctx, q, AuditKeyRolled, KeyTarget(prefix), rolled); err != nil {
		return APIKey{}, APIKey{}, translate(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return APIKey{}, APIKey{}, translate(err)
	}
	return old, made, nil
}

// timeOrNil is t, or nil (JSON null) when it is not set.
func timeOrNil(t pgtype.Timestamptz) any {
	if !t.Valid {
		return nil
	}
	return t.Time.UTC()
}

// Get returns the key with this prefix, revoked or not. Returns ErrNotFound
// if there is none.
func (s *APIKeys) Get(ctx context.Context, prefix string) (_ APIKey, err error) {
	defer wrap(&err, "APIKeys.Get")
	row, err := s.q.APIKeyGet(ctx, prefix)
	return apiKeyFromRow(row), translate(err)
}

// List returns every key, oldest first.
func (s *APIKeys) List(ctx context.Context) (_ []APIKey, err error) {
	defer wrap(&err, "APIKeys.List")
	rows, err := s.q.APIKeyList(ctx)
	if err != nil {
		return nil, translate(err)
	}
	keys := make([]APIKey, len(rows))
	for i, r := range rows {
		keys[i] = apiKeyFromRow(r)
	}
	return keys, nil
}

// Revoke marks the key revoked and returns it. Revoking twice keeps the
// first time. Returns ErrNotFound if there is no such key.
func (s *APIKeys) Revoke(ctx context.Context, prefix string) (_ APIKey, err error) {
	defer wrap(&err, "APIKeys.Revoke")
	var revoked APIKey
	err = inTx(ctx, s.db, func(q *dbsqlc.Queries) error {
		row, err := q.APIKeyRevoke(ctx, prefix)
		if err != nil {
			return err
		}
		revoked = apiKeyFromRow(row)
		return recordAudit(ctx, q, AuditKeyRevoked, KeyTarget(prefix), diff{after: map[string]any{"revoked_at": revoked.RevokedAt}})
	})
	return revoked, translate(err)
}

// Touch records that the key was used now.
func (s *APIKeys) Touch(ctx context.Context, prefix string) (err error) {
	defer wrap(&err, "APIKeys.Touch")
	return translate(s.q.APIKeyTouch(ctx, prefix))
}

func apiKeyFromRow(r dbsqlc.ApiKey) APIKey {
	return APIKey{
		Prefix:     r.Prefix,
		Hash:       r.Hash,
		Name:       r.Name,
		Scopes:     r.Scopes,
		CreatedAt:  r.CreatedAt.UTC(),
		LastUsedAt: timeOrZero(r.LastUsedAt),
		ExpiresAt:  timeOrZero(r.ExpiresAt),
		RevokedAt:  timeOrZero(r.RevokedAt),
		Replaces:   r.Replaces.String,
		RateLimit:  int(r.RateLimit.Int32),
		RatePeriod: intervalDuration(r.RatePeriod),
	}
}

// intervalDuration reads an interval of days and time (a rate period; it
// has no months).
func intervalDuration(i pgtype.Interval) time.Duration {
	if !i.Valid {
		return 0
	}
	return time.Duration(i.Days)*24*time.Hour + time.Duration(i.Microseconds)*time.Microsecond
}

func optionalTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

func timeOrZero(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}
