package store

import (
	"context"
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
}

// NewAPIKey is what is stored for a key being created.
type NewAPIKey struct {
	Prefix    string
	Hash      []byte
	Name      string
	Scopes    []string
	ExpiresAt time.Time // zero for never
}

// APIKeys is the PostgreSQL repository of API keys.
type APIKeys struct {
	q *dbsqlc.Queries
}

// NewAPIKeys returns a repository that runs on db.
func NewAPIKeys(db DB) *APIKeys {
	return &APIKeys{q: dbsqlc.New(db)}
}

// Create stores a key. Returns ErrConflict if its prefix is taken.
func (s *APIKeys) Create(ctx context.Context, k NewAPIKey) (_ APIKey, err error) {
	defer wrap(&err, "APIKeys.Create")
	row, err := s.q.APIKeyCreate(ctx, dbsqlc.APIKeyCreateParams{
		Prefix: k.Prefix, Hash: k.Hash, Name: k.Name, Scopes: k.Scopes, ExpiresAt: optionalTime(k.ExpiresAt),
	})
	return apiKeyFromRow(row), translate(err)
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
	row, err := s.q.APIKeyRevoke(ctx, prefix)
	return apiKeyFromRow(row), translate(err)
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
	}
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
