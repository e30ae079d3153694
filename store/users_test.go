package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"userapi/store"
	"userapi/store/storetest"
)

func newUsers(t *testing.T) *store.Users {
	t.Helper()
	return store.NewUsers(storetest.NewPool(t))
}

func ptr[T any](v T) *T { return &v }

func TestUsers_CreateGet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := newUsers(t)

	created, err := users.Create(ctx, store.NewUser{Name: "Ada", Email: "Ada@Example.com"})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	if created.ID < 1 || created.Version != 1 || created.CreatedAt.IsZero() || created.CreatedAt.Location().String() != "UTC" {
		t.Errorf("Create() = %+v, want an id, version 1 and a UTC creation time", created)
	}
	got, err := users.Get(ctx, created.ID)
	if err != nil {
		t.Fatalf("Get(%d) error = %v", created.ID, err)
	}
	if got != created {
		t.Errorf("Get(%d) = %+v, want %+v", created.ID, got, created)
	}

	t.Run("ErrConflictIgnoresCase", func(t *testing.T) {
		_, err := users.Create(ctx, store.NewUser{Name: "Other", Email: "ada@EXAMPLE.com"})
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("Create(same email, other case) error = %v, want ErrConflict", err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := users.Get(ctx, created.ID+1000)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(unknown) error = %v, want ErrNotFound", err)
		}
	})
}

func TestUsers_Update(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := newUsers(t)
	u, err := users.Create(ctx, store.NewUser{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := users.Create(ctx, store.NewUser{Name: "Bob", Email: "bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("PartialKeepsOtherFields", func(t *testing.T) {
		got, err := users.Update(ctx, u.ID, store.UserChange{Name: ptr("Ada King")})
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Ada King" || got.Email != "ada@example.com" || got.Version != u.Version+1 || !got.UpdatedAt.After(u.UpdatedAt) {
			t.Errorf("Update(name only) = %+v, want new name, same email, version %d, later updated_at", got, u.Version+1)
		}
		u = got
	})
	t.Run("ErrPrecondition", func(t *testing.T) {
		stale := u.Version - 1
		_, err := users.Update(ctx, u.ID, store.UserChange{Name: ptr("X"), IfVersion: func(v int64) bool { return v == stale }})
		if !errors.Is(err, store.ErrPrecondition) {
			t.Errorf("Update(stale version) error = %v, want ErrPrecondition", err)
		}
		got, _ := users.Get(ctx, u.ID)
		if got != u {
			t.Errorf("after a refused update Get = %+v, want unchanged %+v", got, u)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		_, err := users.Update(ctx, u.ID, store.UserChange{Email: ptr("BOB@example.com")})
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("Update(email of %d) error = %v, want ErrConflict", other.ID, err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := users.Update(ctx, other.ID+1000, store.UserChange{Name: ptr("X")})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Update(unknown) error = %v, want ErrNotFound", err)
		}
	})
}

// Concurrent If-Match updates of one version: the row lock lets exactly one win.
func TestUsers_UpdateIfVersionRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := store.NewUsers(storetest.Pool(t, storetest.NewDB(t), 8))
	u, err := users.Create(ctx, store.NewUser{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = users.Update(ctx, u.ID, store.UserChange{
				Name:      ptr(fmt.Sprint("writer ", i)),
				IfVersion: func(v int64) bool { return v == u.Version },
			})
		})
	}
	wg.Wait()
	var ok, refused int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrPrecondition):
			refused++
		default:
			t.Errorf("Update error = %v", err)
		}
	}
	if ok != 1 || refused != n-1 {
		t.Errorf("%d concurrent conditional updates: %d succeeded, %d refused; want 1 and %d", n, ok, refused, n-1)
	}
}

func TestUsers_Delete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := newUsers(t)
	u, err := users.Create(ctx, store.NewUser{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := users.Delete(ctx, u.ID, nil); err != nil {
		t.Fatalf("Delete(%d) error = %v", u.ID, err)
	}
	if err := users.Delete(ctx, u.ID, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Delete(%d) error = %v, want ErrNotFound", u.ID, err)
	}
	got, err := users.Get(ctx, u.ID)
	if err != nil || got.State != store.StateDeleted || got.DeletedAt == nil || got.Version != u.Version+1 {
		t.Errorf("Get(deleted) = %+v, %v, want the user kept, deleted, at the next version", got, err)
	}
	if err := users.Purge(ctx, u.ID, nil); err != nil {
		t.Fatalf("Purge(%d) error = %v", u.ID, err)
	}
	if _, err := users.Get(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(purged) error = %v, want ErrNotFound", err)
	}
}

func TestUsers_DeleteIfVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := newUsers(t)
	u, err := users.Create(ctx, store.NewUser{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var seen int64
	other := func(v int64) bool { seen = v; return v == u.Version+1 }
	if err := users.Delete(ctx, u.ID, other); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("Delete(%d, other version) error = %v, want ErrPrecondition", u.ID, err)
	}
	if seen != u.Version {
		t.Errorf("ifVersion saw version %d, want %d", seen, u.Version)
	}
	if _, err := users.Get(ctx, u.ID); err != nil {
		t.Fatalf("Get after a refused Delete: %v, want the user kept", err)
	}
	if err := users.Delete(ctx, u.ID, func(v int64) bool { return v == u.Version }); err != nil {
		t.Fatalf("Delete(%d, its version) error = %v", u.ID, err)
	}
	if err := users.Delete(ctx, u.ID, func(int64) bool { return true }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete(deleted, any version) error = %v, want ErrNotFound", err)
	}
}

func TestUsers_List(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := newUsers(t)
	var ids []int64
	for i := range 7 {
		u, err := users.Create(ctx, store.NewUser{Name: fmt.Sprint("user ", i), Email: fmt.Sprintf("u%d@example.com", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}

	// Keyset paging visits every user once, in id order.
	var seen []int64
	var after *store.UserPosition
	for range 10 {
		page, err := users.List(ctx, store.UserFilter{After: after, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page.Users {
			seen = append(seen, u.ID)
		}
		if !page.More {
			break
		}
		after = &store.UserPosition{ID: page.Users[len(page.Users)-1].ID}
	}
	if fmt.Sprint(seen) != fmt.Sprint(ids) {
		t.Errorf("keyset pages = %v, want %v", seen, ids)
	}

	tests := []struct {
		name     string
		filter   store.UserFilter
		wantIDs  []int64
		wantMore bool
	}{
		{"Offset", store.UserFilter{Offset: 5, Limit: 3}, ids[5:], false},
		{"OffsetMore", store.UserFilter{Offset: 1, Limit: 2}, ids[1:3], true},
		{"EmailAnyCase", store.UserFilter{Limit: 10, UserQuery: store.UserQuery{Email: ptr("U3@EXAMPLE.COM")}}, ids[3:4], false},
		{"EmailUnknown", store.UserFilter{Limit: 10, UserQuery: store.UserQuery{Email: ptr("nobody@example.com")}}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := users.List(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, u := range page.Users {
				got = append(got, u.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantIDs) || page.More != tt.wantMore {
				t.Errorf("List(%+v) = %v, more=%v; want %v, more=%v", tt.filter, got, page.More, tt.wantIDs, tt.wantMore)
			}
		})
	}
}

// Instances starting together must each see a migrated schema, and apply
// each migration once.
func TestMigrate_Concurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := storetest.NewDB(t)
	// The template is migrated already: drop the schema to start from nothing.
	pool := storetest.Pool(t, dbURL, 6)
	if _, err := pool.Exec(ctx, "DROP SCHEMA public CASCADE; CREATE SCHEMA public"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	applied := make([][]string, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() { applied[i], errs[i] = store.Migrate(ctx, pool) })
	}
	wg.Wait()
	total := 0
	for i := range 4 {
		if errs[i] != nil {
			t.Fatalf("Migrate error = %v", errs[i])
		}
		total += len(applied[i])
	}
	var files int
	if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM schema_migrations) + (SELECT count(*) FROM river_migration)").Scan(&files); err != nil {
		t.Fatal(err)
	}
	if total != files || files == 0 {
		t.Errorf("4 concurrent Migrate calls applied %d migrations in all, want %d (each once)", total, files)
	}
	if _, err := store.NewUsers(pool).Create(ctx, store.NewUser{Name: "Ada", Email: "ada@example.com"}); err != nil {
		t.Errorf("Create after Migrate error = %v", err)
	}
}
