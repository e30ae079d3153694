package store_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The signing migration turns each secret of the earlier scheme, which
// keyed the HMAC with its own bytes, into a Standard Webhooks secret with
// the same key: what the official library signs with the new secret is the
// HMAC the old secret's bytes make.
func TestMigrate_WebhookSecretsKeepTheirKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, migration := replayMigration(t, "0011_webhook_signing.sql")
	old := []string{
		"whsec_3q2-7wAAAAA8T1hnVVcyb0RBbm9lRUFhcmFh", // generated before: URL-safe, unpadded
		"my-own-secret-1234",
		"ünïcödé secret, and long enough to wrap base64 lines: 0123456789abcdefghijklmnopqrstuvwxyz0123456789",
	}
	for _, sql := range []string{
		// Back to the schema before the migration.
		"ALTER TABLE webhooks DROP COLUMN previous_secret, DROP COLUMN previous_secret_until, DROP CONSTRAINT webhooks_secret_check",
		"ALTER TABLE webhooks ADD CONSTRAINT webhooks_secret_check CHECK (char_length(secret) BETWEEN 16 AND 200)",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	for _, s := range old {
		if _, err := conn.Exec(ctx, "INSERT INTO webhooks (url, events, secret) VALUES ('https://example.com/h', '{user.created}', $1)", s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, string(migration)); err != nil {
		t.Fatal(err)
	}

	rows, err := conn.Query(ctx, "SELECT secret FROM webhooks ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	migrated, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1_800_000_000, 0)
	for i, secret := range migrated {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Errorf("secret %q became %q, which the library refuses: %v", old[i], secret, err)
			continue
		}
		got, _ := wh.Sign("msg_1", ts, []byte("{}"))
		m := hmac.New(sha256.New, []byte(old[i]))
		fmt.Fprintf(m, "msg_1.%d.{}", ts.Unix())
		if want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)); got != want {
			t.Errorf("secret %q became %q, which signs %s; the old key signs %s", old[i], secret, got, want)
		}
	}
	if _, err := conn.Exec(ctx, "INSERT INTO webhooks (url, events, secret) VALUES ('https://example.com/h', '{user.created}', 'not-a-standard-secret-0123')"); err == nil {
		t.Error("after the migration, a secret without whsec_ and base64 was stored")
	}
}
