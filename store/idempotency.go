package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"userapi/store/internal/dbsqlc"
)

// ErrInProgress means another request holds the idempotency key right now.
var ErrInProgress = errors.New("in progress")

// Response is a stored answer to a request made with an idempotency key.
type Response struct {
	// Fingerprint identifies the request (method, path and body), so that
	// the key sent with another request is recognised.
	Fingerprint []byte
	Status      int
	Header      map[string][]string
	Body        []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Idempotency stores the answers to requests made with an idempotency key,
// in the transaction of the request's effect.
type Idempotency struct {
	db DB
}

// NewIdempotency returns a repository on db, normally the pool.
func NewIdempotency(db DB) *Idempotency {
	return &Idempotency{db: db}
}

// KeyTx is the transaction of one request made with an idempotency key. It
// holds the key's lock until it ends.
type KeyTx struct {
	tx         pgx.Tx
	q          *dbsqlc.Queries
	scope, key string
	ambient    Ambient
	ended      bool
}

// Begin starts the transaction of a request made with key in scope and takes
// the key's lock. It returns ErrInProgress, without waiting, when another
// transaction holds the lock.
func (s *Idempotency) Begin(ctx context.Context, scope, key string) (_ *KeyTx, err error) {
	defer wrap(&err, "Idempotency.Begin")
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, translate(err)
	}
	q := dbsqlc.New(tx)
	locked, err := q.IdempotencyLock(ctx, lockKey(scope, key))
	if err == nil && !locked {
		err = ErrInProgress
	}
	if err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, translate(err)
	}
	return &KeyTx{tx: tx, q: q, scope: scope, key: key}, nil
}

// lockKey is the advisory lock of a key: 64 bits of a hash of the scope and
// the key, which cannot hold NUL (scopes and keys are printable text).
func lockKey(scope, key string) int64 {
	sum := sha256.Sum256([]byte(scope + "\x00" + key))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// Stored returns the key's stored answer, and false when there is none or it
// has expired.
func (k *KeyTx) Stored(ctx context.Context) (_ Response, found bool, err error) {
	defer wrap(&err, "Idempotency.Stored")
	row, err := k.q.IdempotencyGet(ctx, dbsqlc.IdempotencyGetParams{Scope: k.scope, Key: k.key})
	if errors.Is(err, pgx.ErrNoRows) {
		return Response{}, false, nil
	}
	if err != nil {
		return Response{}, false, translate(err)
	}
	r := Response{Fingerprint: row.Fingerprint, Status: int(row.Status), Body: row.Body,
		CreatedAt: row.CreatedAt.UTC(), ExpiresAt: row.ExpiresAt.UTC()}
	if err := json.Unmarshal(row.Headers, &r.Header); err != nil {
		return Response{}, false, fmt.Errorf("decode stored headers: %w", err)
	}
	return r, true, nil
}

// Context returns ctx carrying the transaction, so that the request's
// effects (through any repository on the pool, the job queue and their
// hooks) commit or roll back with its record.
func (k *KeyTx) Context(ctx context.Context) context.Context {
	ctx, k.ambient = WithTx(ctx, k.tx)
	return ctx
}

// Commit stores r as the key's answer for ttl and commits it together with
// everything done in the transaction.
func (k *KeyTx) Commit(ctx context.Context, r Response, ttl time.Duration) (err error) {
	defer wrap(&err, "Idempotency.Commit")
	defer k.end()
	header, err := json.Marshal(r.Header)
	if err != nil {
		return err
	}
	n, err := k.q.IdempotencyPut(ctx, dbsqlc.IdempotencyPutParams{
		Scope: k.scope, Key: k.key, Fingerprint: r.Fingerprint, Status: int16(r.Status),
		Headers: header, Body: r.Body, TtlSeconds: ttl.Seconds(),
	})
	if err != nil {
		_ = k.tx.Rollback(context.WithoutCancel(ctx))
		return translate(err)
	}
	if n != 1 {
		// The lock makes this impossible unless it was lost with its session.
		_ = k.tx.Rollback(context.WithoutCancel(ctx))
		return ErrInProgress
	}
	return translate(k.tx.Commit(ctx))
}

// Rollback undoes everything done in the transaction; it stores nothing.
func (k *KeyTx) Rollback(ctx context.Context) error {
	if k.ended {
		return nil
	}
	defer k.end()
	return translate(k.tx.Rollback(context.WithoutCancel(ctx)))
}

func (k *KeyTx) end() {
	if k.ended {
		return
	}
	k.ended = true
	if k.ambient.a != nil {
		k.ambient.Ended()
	}
}

// DeleteExpired deletes up to limit expired records and returns how many it
// deleted. Expired records are ignored and replaced anyway; this only frees
// the space.
func (s *Idempotency) DeleteExpired(ctx context.Context, limit int) (_ int64, err error) {
	defer wrap(&err, "Idempotency.DeleteExpired")
	n, err := dbsqlc.New(s.db).IdempotencyDeleteExpired(ctx, int64(limit))
	return n, translate(err)
}
