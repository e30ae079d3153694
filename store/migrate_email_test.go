package store_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"userapi/store/storetest"
)

// The email-key migration runs on data the old rule (unique lower(email))
// allowed, duplicates under the new one included: it must not fail, and
// the oldest of each set of duplicates keeps the address.
func TestMigrate_EmailKeyKeepsDuplicates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, migration := replayMigration(t, "0006_email_key.sql")
	for _, sql := range []string{
		// Back to the schema before the migration.
		"DROP INDEX users_email_key",
		"ALTER TABLE users DROP COLUMN email_key",
		"CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email))",
		"INSERT INTO users (name, email) VALUES ('NFC', 'jos\u00e9@example.com'), ('NFD', 'jose\u0301@example.com'), " +
			"('Full width', '\uff41\uff44\uff41@example.com'), ('ASCII', 'Ada@example.com'), ('Other', 'bob@example.com')",
		string(migration),
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	rows, err := conn.Query(ctx, "SELECT name, email_key FROM users ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]*string, error) {
		var name, key *string
		return [2]*string{name, key}, r.Scan(&name, &key)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ name, key string }{ // "" is NULL
		{"NFC", "jos\u00e9@example.com"},
		{"NFD", ""},
		{"Full width", "ada@example.com"},
		{"ASCII", ""},
		{"Other", "bob@example.com"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows after the migration, want %d", len(got), len(want))
	}
	for i, w := range want {
		key := ""
		if got[i][1] != nil {
			key = *got[i][1]
		}
		if *got[i][0] != w.name || key != w.key {
			t.Errorf("row %d = %s with key %q, want %s with key %q", i, *got[i][0], key, w.name, w.key)
		}
	}
}

// replayMigration connects to a fresh database and reads the migration
// file, for tests that put the schema back to before it, fill it with old
// data and run the migration again.
func replayMigration(t *testing.T, file string) (*pgx.Conn, []byte) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), storetest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	migration, err := os.ReadFile("migrations/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return conn, migration
}
