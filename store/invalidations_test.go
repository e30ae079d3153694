package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"userapi/store"
	"userapi/store/storetest"
)

const window = time.Hour

func keys(b store.InvalidationBatch) []string {
	var ks []string
	for _, r := range b.Rows {
		ks = append(ks, r.Key)
	}
	return ks
}

func versions(b store.InvalidationBatch) []int64 {
	var vs []int64
	for _, r := range b.Rows {
		vs = append(vs, r.Version)
	}
	return vs
}

// Each change to a cached row records its key in the same transaction;
// changes no cache holds (profile data, last use of a key) record nothing.
func TestInvalidationLog_RecordsCachedChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	users, apiKeys, log := store.NewUsers(pool), store.NewAPIKeys(pool), store.NewInvalidationLog(pool)

	u, err := users.Create(ctx, store.NewUser{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	user := fmt.Sprint("user:", u.ID)
	if _, err := users.Update(ctx, u.ID, store.UserChange{Name: ptr("Ada L.")}); err != nil {
		t.Fatal(err)
	}
	if _, err := users.SetProfile(ctx, u.ID, func(store.User) store.Profile { return store.Profile{Score: 50} }); err != nil {
		t.Fatal(err)
	}
	if _, err := apiKeys.Create(ctx, store.NewAPIKey{Prefix: "uak_test", Hash: make([]byte, 32), Name: "k", Scopes: []string{"admin"}}); err != nil {
		t.Fatal(err)
	}
	if err := apiKeys.Touch(ctx, "uak_test"); err != nil {
		t.Fatal(err)
	}
	if _, err := apiKeys.Revoke(ctx, "uak_test"); err != nil {
		t.Fatal(err)
	}
	if err := users.Delete(ctx, u.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := users.Purge(ctx, u.ID, nil); err != nil {
		t.Fatal(err)
	}
	// A change rolled back records nothing either.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.NewUsers(tx).Create(ctx, store.NewUser{Name: "Gone", Email: "gone@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	b, err := log.Since(ctx, 0, 0, window, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{user, user, "apikey:uak_test", "apikey:uak_test", user, user}
	if got := keys(b); !slices.Equal(got, want) {
		t.Errorf("recorded %q, want %q (create, update, key create, key revoke, soft delete, purge)", got, want)
	}
	// A user's entry of the new version or later is fresh; anything else
	// is deleted whatever it holds.
	if got, want := versions(b), []int64{1, 2, 0, 0, 3, 0}; !slices.Equal(got, want) {
		t.Errorf("recorded versions %v, want %v", got, want)
	}
	if b.Horizon == 0 {
		t.Error("Horizon = 0, want the snapshot's xmin")
	}
}

// A transaction that took its id first but commits last is not skipped:
// the reader's horizon stays below it until it ends.
func TestInvalidationLog_LateCommitIsNotSkipped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	log := store.NewInvalidationLog(pool)

	early, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Rollback(ctx) //nolint:errcheck
	lateUser, err := store.NewUsers(early).Create(ctx, store.NewUser{Name: "Late", Email: "late@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	quick, err := store.NewUsers(pool).Create(ctx, store.NewUser{Name: "Quick", Email: "quick@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if lateUser.ID > quick.ID {
		t.Fatalf("ids %d (late) and %d (quick): want the late transaction's taken first", lateUser.ID, quick.ID)
	}

	first, err := log.Since(ctx, 0, 0, window, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keys(first), []string{fmt.Sprint("user:", quick.ID)}; !slices.Equal(got, want) {
		t.Fatalf("before the late commit: %q, want %q", got, want)
	}
	if err := early.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	next, err := log.Since(ctx, first.Horizon, 0, window, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if late := fmt.Sprint("user:", lateUser.ID); !slices.Contains(keys(next), late) {
		t.Errorf("after the late commit, reading from horizon %d: %q, want it to include %q", first.Horizon, keys(next), late)
	}
}

// Trim deletes only rows older than the window.
func TestInvalidationLog_Trim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	log := store.NewInvalidationLog(pool)
	if _, err := store.NewUsers(pool).Create(ctx, store.NewUser{Name: "Ada", Email: "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "UPDATE cache_invalidations SET created_at = now() - interval '2 hours'"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.NewUsers(pool).Create(ctx, store.NewUser{Name: "Bo", Email: "bo@example.com"}); err != nil {
		t.Fatal(err)
	}
	n, err := log.Trim(ctx, window, 100)
	if err != nil || n != 1 {
		t.Fatalf("Trim = %d, %v; want 1 row deleted", n, err)
	}
	b, err := log.Since(ctx, 0, 0, 24*time.Hour, 1000)
	if err != nil || len(b.Rows) != 1 {
		t.Errorf("after Trim: %+v, %v; want the recent row only", b.Rows, err)
	}
}

// The log is read a page at a time: up to the limit, in id order, each
// page after the last row of the one before, every row once.
func TestInvalidationLog_Pages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	users, log := store.NewUsers(pool), store.NewInvalidationLog(pool)
	var want []string
	for i := range 5 {
		u, err := users.Create(ctx, store.NewUser{Name: "Page", Email: fmt.Sprintf("page%d@example.com", i)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprint("user:", u.ID))
	}
	var got []string
	var after int64
	for pages := 0; ; pages++ {
		b, err := log.Since(ctx, 0, after, window, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Rows) > 2 || pages > 3 {
			t.Fatalf("page %d holds %d rows, limit 2", pages+1, len(b.Rows))
		}
		got = append(got, keys(b)...)
		if len(b.Rows) < 2 {
			break
		}
		after = b.Rows[len(b.Rows)-1].ID
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages of 2 gave %q, want %q", got, want)
	}
}
