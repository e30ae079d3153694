package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"userapi/store"
	"userapi/store/storetest"
)

func TestIdempotency_LockStoreReplace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.Pool(t, storetest.NewDB(t), 4)
	keys := store.NewIdempotency(pool)
	begin := func() *store.KeyTx {
		t.Helper()
		k, err := keys.Begin(ctx, "scope", "key")
		if err != nil {
			t.Fatalf("Begin error = %v", err)
		}
		// Left open, it would keep the pool from closing.
		t.Cleanup(func() { _ = k.Rollback(ctx) })
		return k
	}

	k := begin()
	// Held: another transaction with the key is refused at once; the same
	// key in another scope is another key.
	if _, err := keys.Begin(ctx, "scope", "key"); !errors.Is(err, store.ErrInProgress) {
		t.Fatalf("second Begin error = %v, want ErrInProgress", err)
	}
	other, err := keys.Begin(ctx, "other", "key")
	if err != nil {
		t.Fatalf("Begin in another scope error = %v, want none", err)
	}
	_ = other.Rollback(ctx)
	if _, found, err := k.Stored(ctx); err != nil || found {
		t.Fatalf("Stored = found %v, %v; want nothing", found, err)
	}
	r := store.Response{Fingerprint: bytes.Repeat([]byte{1}, 32), Status: 201,
		Header: map[string][]string{"Location": {"/users/1"}}, Body: []byte(`{"id":1}`)}
	if err := k.Commit(ctx, r, time.Hour); err != nil {
		t.Fatal(err)
	}

	k = begin()
	got, found, err := k.Stored(ctx)
	if err != nil || !found || got.Status != 201 || !bytes.Equal(got.Body, r.Body) || got.Header["Location"][0] != "/users/1" ||
		!bytes.Equal(got.Fingerprint, r.Fingerprint) || !got.ExpiresAt.After(got.CreatedAt) {
		t.Fatalf("Stored = %+v, %v, %v; want %+v", got, found, err, r)
	}
	_ = k.Rollback(ctx)

	if _, err := pool.Exec(ctx, "UPDATE idempotency_keys SET expires_at = now() - interval '1 ms'"); err != nil {
		t.Fatal(err)
	}
	k = begin()
	if _, found, err := k.Stored(ctx); err != nil || found {
		t.Fatalf("Stored after expiry = found %v, %v; want nothing", found, err)
	}
	r.Status = 202
	if err := k.Commit(ctx, r, time.Hour); err != nil {
		t.Fatalf("Commit over an expired record error = %v", err)
	}
	var status int
	if err := pool.QueryRow(ctx, "SELECT status FROM idempotency_keys WHERE scope = 'scope' AND key = 'key'").Scan(&status); err != nil || status != 202 {
		t.Errorf("stored status = %d, %v; want the replacement's 202", status, err)
	}
}

// Repositories on the pool join the transaction a context carries: their
// writes commit or roll back with it, and AfterTx work waits for its end.
func TestWithTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.Pool(t, storetest.NewDB(t), 4)
	users, webhooks, keys := store.NewUsers(pool), store.NewWebhooks(pool), store.NewIdempotency(pool)
	r := store.Response{Fingerprint: make([]byte, 32), Status: 201, Header: map[string][]string{}, Body: []byte("{}")}

	for _, commit := range []bool{false, true} {
		k, err := keys.Begin(ctx, "", "k")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k.Rollback(ctx) })
		txCtx := k.Context(ctx)
		var after []string
		store.AfterTx(txCtx, func() { after = append(after, "ran") })
		if _, err := users.Create(txCtx, store.NewUser{Name: "Ada", Email: "ada@example.com"}); err != nil {
			t.Fatal(err)
		}
		// A nested transaction (the hook's, the queue's) is a savepoint.
		if _, err := users.WithHook(func(context.Context, pgx.Tx, store.UserEvent) error { return errors.New("no") }).
			Create(txCtx, store.NewUser{Name: "Bob", Email: "bob@example.com"}); err == nil {
			t.Fatal("Create with a failing hook succeeded")
		}
		if _, err := webhooks.Create(txCtx, store.NewWebhook{URL: "https://example.com/h", Events: []string{store.UserCreated}, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}); err != nil {
			t.Fatal(err)
		}
		// Outside, nothing is visible yet.
		if _, err := users.Get(ctx, 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get outside the transaction error = %v, want ErrNotFound", err)
		}
		if len(after) != 0 {
			t.Fatal("AfterTx ran before the transaction ended")
		}
		if commit {
			err = k.Commit(ctx, r, time.Hour)
		} else {
			err = k.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != 1 {
			t.Errorf("AfterTx ran %d times after the end, want once", len(after))
		}
		var n, w, rec int
		if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM webhooks), (SELECT count(*) FROM idempotency_keys)").Scan(&n, &w, &rec); err != nil {
			t.Fatal(err)
		}
		want := 0
		if commit {
			want = 1
		}
		if n != want || w != want || rec != want {
			t.Errorf("commit=%v: %d users, %d webhooks, %d records; want %d of each", commit, n, w, rec, want)
		}
	}

	ran := false
	store.AfterTx(ctx, func() { ran = true })
	if !ran {
		t.Error("AfterTx without a transaction did not run at once")
	}
}

func TestIdempotency_DeleteExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.Pool(t, storetest.NewDB(t), 2)
	if _, err := pool.Exec(ctx, `INSERT INTO idempotency_keys (scope, key, fingerprint, status, headers, body, expires_at)
		SELECT '', 'k' || i, decode(repeat('00', 32), 'hex'), 201, '{}', '', now() + CASE WHEN i <= 7 THEN interval '-1 s' ELSE interval '1 h' END
		FROM generate_series(1, 10) i`); err != nil {
		t.Fatal(err)
	}
	keys := store.NewIdempotency(pool)
	if n, err := keys.DeleteExpired(ctx, 5); err != nil || n != 5 {
		t.Errorf("DeleteExpired(5) = %d, %v; want 5", n, err)
	}
	if n, err := keys.DeleteExpired(ctx, 5); err != nil || n != 2 {
		t.Errorf("DeleteExpired(5) again = %d, %v; want the last 2", n, err)
	}
	var left int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM idempotency_keys").Scan(&left); err != nil || left != 3 {
		t.Errorf("%d records left, %v; want the 3 unexpired", left, err)
	}
}
