package store_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"userapi/store"
	"userapi/store/storetest"
)

// Each user change records its event's type, the caller WithActor named,
// and the fields that differ between the row before and after; a change
// its hook refuses records nothing.
func TestAudit_UserChanges(t *testing.T) {
	t.Parallel()
	pool := storetest.NewPool(t)
	users := store.NewUsers(pool)
	audit := store.NewAudit(pool)
	ctx := store.WithActor(context.Background(), "uak_3kq7zt2m", "req-1")

	ada, err := users.Create(ctx, store.NewUser{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.Update(ctx, ada.ID, store.UserChange{Email: ptr("ada@example.org")}); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("refused")
	failing := users.WithHook(func(context.Context, pgx.Tx, store.UserEvent) error { return refused })
	if _, err := failing.Update(ctx, ada.ID, store.UserChange{Name: ptr("Rolled back")}); !errors.Is(err, refused) {
		t.Fatalf("Update with a failing hook = %v, want its error", err)
	}
	if err := users.Delete(context.Background(), ada.ID, nil); err != nil {
		t.Fatal(err)
	}

	page, err := audit.List(context.Background(), store.AuditFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range page.Entries {
		line := strings.Join([]string{e.Action, e.Target, e.Actor, e.RequestID, string(e.Before), string(e.After)}, " ")
		got = append(got, deletedAt.ReplaceAllString(line, `"deleted_at": "T"`))
	}
	want := []string{ // as jsonb prints objects
		`user.deleted user:1 system  {"state": "active", "deleted_at": null} {"state": "deleted", "deleted_at": "T"}`,
		`user.updated user:1 uak_3kq7zt2m req-1 {"email": "ada@example.com"} {"email": "ada@example.org"}`,
		`user.created user:1 uak_3kq7zt2m req-1  {"name": "Ada", "email": "ada@example.com", "state": "active", "deleted_at": null}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || page.Next != 0 {
		t.Errorf("audit log =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// deletedAt matches a deletion time in a diff, which the test cannot know.
var deletedAt = regexp.MustCompile(`"deleted_at": "[^"]+"`)

// A purge drops the diffs of the user's entries and of any entry that holds
// a name or email the user had, and keeps the entries themselves and
// everyone else's diffs.
func TestAudit_PurgeErasesDiffs(t *testing.T) {
	t.Parallel()
	pool := storetest.NewPool(t)
	users := store.NewUsers(pool)
	audit := store.NewAudit(pool)
	ctx := context.Background()

	ada, err := users.Create(ctx, store.NewUser{Name: "Ada Lovelace", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if ada, err = users.Update(ctx, ada.ID, store.UserChange{Name: ptr("Ada King")}); err != nil {
		t.Fatal(err)
	}
	// Another user's entry that carries Ada's email, in a nested value.
	bob, err := users.Create(ctx, store.NewUser{Name: "Bob", Email: "bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO audit_log (actor, action, target, after) VALUES ('cli', 'note', $1, '{"seen": ["ada@example.com"]}')`,
		store.UserTarget(bob.ID)); err != nil {
		t.Fatal(err)
	}
	if err := users.Delete(ctx, ada.ID, nil); err != nil {
		t.Fatal(err)
	}

	if err := users.Purge(ctx, ada.ID, nil); err != nil {
		t.Fatal(err)
	}
	var entries, withPersonal int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE concat(before::text, after::text) ~ '(Ada|ada@)') FROM audit_log`).
		Scan(&entries, &withPersonal); err != nil {
		t.Fatal(err)
	}
	if entries != 6 || withPersonal != 0 {
		t.Errorf("after the purge: %d entries, %d with Ada's name or email; want all 6 kept (the purge's own included) and none", entries, withPersonal)
	}
	page, err := audit.List(ctx, store.AuditFilter{Target: store.UserTarget(bob.ID), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 2 || page.Entries[1].After == nil || !strings.Contains(string(page.Entries[1].After), "bob@example.com") {
		t.Errorf("Bob's entries after erasing Ada = %+v, want his creation's diff kept", page.Entries)
	}
}
