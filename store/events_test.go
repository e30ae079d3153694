package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"userapi/store"
	"userapi/store/storetest"
)

// readAll pages through the log from after to its end, as a client would.
func readAll(t *testing.T, log *store.Events, after int64) ([]store.Event, int64) {
	t.Helper()
	var all []store.Event
	for {
		page, err := log.After(context.Background(), store.EventFilter{After: after, Limit: 2})
		if err != nil {
			t.Fatalf("After(%d) error = %v", after, err)
		}
		all = append(all, page.Events...)
		if page.Next < after {
			t.Fatalf("After(%d).Next = %d, went back", after, page.Next)
		}
		after = page.Next
		if len(page.Events) < 2 {
			return all, after
		}
	}
}

func ids(evs []store.Event) []int64 {
	out := make([]int64, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// Every change writes one event in its transaction: the user after the
// change (the last state for a delete), the changed fields of an update;
// a change that rolls back writes none.
func TestEvents_OnePerChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.Pool(t, storetest.QuietDB(t), 4)
	users, log := store.NewUsers(pool), store.NewEvents(pool)

	ada, err := users.Create(ctx, store.NewUser{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.Create(ctx, store.NewUser{Name: "Dup", Email: "ADA@example.com"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Create(duplicate) error = %v, want ErrConflict", err)
	}
	if _, err := users.Update(ctx, ada.ID, store.UserChange{Email: ptr("ada@lovelace.example")}); err != nil {
		t.Fatal(err)
	}
	if err := users.Delete(ctx, ada.ID, nil); err != nil {
		t.Fatal(err)
	}

	evs, _ := readAll(t, log, 0)
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
		if ev.UserID != ada.ID {
			t.Errorf("event %d has user_id %d, want %d", ev.ID, ev.UserID, ada.ID)
		}
	}
	if want := []string{store.UserCreated, store.UserUpdated, store.UserDeleted}; !slices.Equal(types, want) {
		t.Fatalf("event types = %v, want %v", types, want)
	}
	if !slices.IsSorted(ids(evs)) || evs[0].ID == evs[1].ID || evs[1].ID == evs[2].ID {
		t.Errorf("ids = %v, want strictly increasing", ids(evs))
	}
	if !slices.Equal(evs[1].Changed, []string{"email"}) || evs[0].Changed != nil {
		t.Errorf("changed = %v and %v, want [email] on the update, none on the create", evs[1].Changed, evs[0].Changed)
	}
	var last struct {
		ID    int64  `json:"id"`
		Email string `json:"email"`
	}
	if err := json.Unmarshal(evs[2].Data, &last); err != nil || last.ID != ada.ID || last.Email != "ada@lovelace.example" {
		t.Errorf("user.deleted data = %s, want the user as it last was", evs[2].Data)
	}
}

// The ordering rule: a transaction that wrote an event and commits after
// a later one did must not be skipped by a reader that read in between.
// With ids shown as soon as they commit, the read in between would show the
// later event, the reader would continue after it, and never see the
// first.
func TestEvents_LateCommitIsNotSkipped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.Pool(t, storetest.QuietDB(t), 4)
	users, log := store.NewUsers(pool), store.NewEvents(pool)

	// Transaction A writes its event first and stays open.
	txA, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer txA.Rollback(ctx) //nolint:errcheck // after Commit, a no-op
	if _, err := users.WithTx(txA).Create(ctx, store.NewUser{Name: "Late", Email: "late@example.com"}); err != nil {
		t.Fatal(err)
	}
	// B writes and commits while A is open.
	if _, err := users.Create(ctx, store.NewUser{Name: "Early", Email: "early@example.com"}); err != nil {
		t.Fatal(err)
	}
	seen, next := readAll(t, log, 0)

	if err := txA.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	rest, _ := readAll(t, log, next)
	all := append(seen, rest...)

	var emails []string
	for _, ev := range all {
		var u struct{ Email string }
		_ = json.Unmarshal(ev.Data, &u)
		emails = append(emails, u.Email)
	}
	if want := []string{"late@example.com", "early@example.com"}; !slices.Equal(emails, want) {
		t.Fatalf("read before the late commit: %v; after it: %v; all = %v, want %v in that order", ids(seen), ids(rest), emails, want)
	}
	if !slices.IsSorted(ids(all)) {
		t.Errorf("ids = %v, want increasing", ids(all))
	}
}

// Trimmed events are gone: reading after an id the retention job passed is
// ErrGone and says where the log starts; reading from 0 gets what is kept.
func TestEvents_Trim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.Pool(t, storetest.QuietDB(t), 4)
	users, log := store.NewUsers(pool), store.NewEvents(pool)
	for _, e := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if _, err := users.Create(ctx, store.NewUser{Name: "X", Email: e}); err != nil {
			t.Fatal(err)
		}
	}
	evs, _ := readAll(t, log, 0)
	// Make the first two old.
	if _, err := pool.Exec(ctx, "UPDATE events SET occurred_at = now() - interval '2 days' WHERE id <= $1", evs[1].ID); err != nil {
		t.Fatal(err)
	}
	n, err := log.Trim(ctx, 24*time.Hour, 1000)
	if err != nil || n != 2 {
		t.Fatalf("Trim() = %d, %v, want 2", n, err)
	}
	_, err = log.After(ctx, store.EventFilter{After: evs[0].ID, Limit: 10})
	var trimmed *store.TrimmedError
	if !errors.Is(err, store.ErrGone) || !errors.As(err, &trimmed) || trimmed.Start != evs[1].ID {
		t.Fatalf("After(first id) after trimming error = %v, want ErrGone starting after %d", err, evs[1].ID)
	}
	kept, _ := readAll(t, log, 0)
	if !slices.Equal(ids(kept), ids(evs[2:])) {
		t.Errorf("After(0) after trimming = %v, want %v", ids(kept), ids(evs[2:]))
	}
	if more, _ := readAll(t, log, evs[1].ID); !slices.Equal(ids(more), ids(evs[2:])) {
		t.Errorf("After(log start) = %v, want %v", ids(more), ids(evs[2:]))
	}
}
