package store_test

import (
	"context"
	"errors"
	"testing"

	"userapi/store"
	"userapi/store/storetest"
)

// Ready passes on a migrated database, and names what is wrong otherwise.
func TestReady(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	if err := store.Ready(ctx, pool); err != nil {
		t.Fatalf("Ready on a migrated database = %v, want nil", err)
	}

	// As after a restore from a backup older than this version.
	if _, err := pool.Exec(ctx, "DELETE FROM schema_migrations WHERE name = (SELECT max(name) FROM schema_migrations)"); err != nil {
		t.Fatal(err)
	}
	if err := store.Ready(ctx, pool); !errors.Is(err, store.ErrSchemaBehind) {
		t.Errorf("Ready with the last migration missing = %v, want ErrSchemaBehind", err)
	}
	if _, err := pool.Exec(ctx, "DROP TABLE schema_migrations"); err != nil {
		t.Fatal(err)
	}
	if err := store.Ready(ctx, pool); !errors.Is(err, store.ErrSchemaBehind) {
		t.Errorf("Ready on a database never migrated = %v, want ErrSchemaBehind", err)
	}

	// Nothing listens on port 1.
	down := storetest.Pool(t, "postgres://postgres@127.0.0.1:1/userapi?sslmode=disable&connect_timeout=2", 1)
	if err := store.Ready(ctx, down); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Ready with the database down = %v, want ErrUnavailable", err)
	}
}
