package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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

// A creation writes its row, event and audit entry in one statement: the
// event's data is the user as the hook gets it, timestamps as encoding/json
// writes them, and the hook gets the subscriptions to user.created that the
// transaction sees, a subscription made just before included.
func TestEvents_CreateRecordsDataAndSubscribers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.Pool(t, storetest.QuietDB(t), 4)
	log := store.NewEvents(pool)
	hooks := store.NewWebhooks(pool)
	newHook := func(events ...string) int64 {
		t.Helper()
		w, err := hooks.Create(ctx, store.NewWebhook{URL: "https://example.com/hook", Events: events, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
		if err != nil {
			t.Fatal(err)
		}
		return w.ID
	}
	var got []store.UserEvent
	users := store.NewUsers(pool).WithHook(func(_ context.Context, _ pgx.Tx, ev store.UserEvent) error {
		got = append(got, ev)
		return nil
	})
	var want [][]int64
	for i := range 12 {
		switch i {
		case 0:
			want = append(want, []int64{})
		case 1:
			newHook(store.UserUpdated)
			want = append(want, []int64{})
		case 2:
			want = append(want, []int64{newHook(store.UserCreated, store.UserDeleted)})
		default:
			want = append(want, want[2])
		}
		if _, err := users.Create(ctx, store.NewUser{Name: fmt.Sprint("Ada <", i, ">"), Email: fmt.Sprintf("ada%d@example.com", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, ev := range got {
		if ev.Subscribers == nil || !slices.Equal(ev.Subscribers, want[i]) {
			t.Errorf("create %d: hook got subscribers %v, want %v", i, ev.Subscribers, want[i])
		}
		stored, err := log.Get(ctx, ev.ID)
		if err != nil {
			t.Fatalf("create %d: event %d: %v", i, ev.ID, err)
		}
		var a, b map[string]any
		if err := json.Unmarshal(stored.Data, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(ev.Data, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) || stored.UserID != ev.User.ID || !stored.OccurredAt.Equal(ev.User.CreatedAt) {
			t.Errorf("create %d: stored event %s (user %d at %s), want %s (user %d at %s)",
				i, stored.Data, stored.UserID, stored.OccurredAt, ev.Data, ev.User.ID, ev.User.CreatedAt)
		}
	}
}

// The statement writes times as encoding/json does: RFC 3339 in UTC, the
// fraction's trailing zeros dropped, no fraction when it is zero.
func TestEvents_CreateTimeFormat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.Pool(t, storetest.QuietDB(t), 2)
	for _, at := range []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999999000, time.FixedZone("", 5*3600)),
		time.Date(2026, 6, 1, 0, 0, 0, 1000, time.UTC),
	} {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The creation's timestamps are the transaction's start.
		if _, err := tx.Exec(ctx, "ALTER TABLE users ALTER COLUMN created_at SET DEFAULT '"+at.Format(time.RFC3339Nano)+"'; "+
			"ALTER TABLE users ALTER COLUMN updated_at SET DEFAULT '"+at.Format(time.RFC3339Nano)+"'"); err != nil {
			t.Fatal(err)
		}
		ctx, done := store.WithTx(ctx, tx)
		u, err := store.NewUsers(pool).Create(ctx, store.NewUser{Name: "Ada", Email: "ada-" + at.Format("150405.000000") + "@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		var data string
		if err := tx.QueryRow(ctx, "SELECT data->>'created_at' FROM events WHERE user_id = $1", u.ID).Scan(&data); err != nil {
			t.Fatal(err)
		}
		_ = tx.Rollback(ctx)
		done.Ended()
		want, _ := json.Marshal(at.UTC())
		if `"`+data+`"` != string(want) {
			t.Errorf("created_at %s in the event = %q, want %s", at, data, want)
		}
	}
}

// With a subscriber hook, a creation nobody subscribes to is one statement
// and the hook does not run; once a subscription exists, even one made just
// before, the creation runs in a transaction with the hook, and a hook that
// fails rolls it back.
func TestEvents_CreateWithSubscriberHook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.Pool(t, storetest.QuietDB(t), 4)
	log := store.NewEvents(pool)
	var hooked []store.UserEvent
	var refuse error
	users := store.NewUsers(pool).WithSubscriberHook(func(_ context.Context, _ pgx.Tx, ev store.UserEvent) error {
		hooked = append(hooked, ev)
		return refuse
	})
	create := func(name string) (store.User, error) {
		return users.Create(ctx, store.NewUser{Name: name, Email: name + "@example.com"})
	}
	if _, err := create("alone"); err != nil {
		t.Fatal(err)
	}
	if len(hooked) != 0 {
		t.Fatalf("hook ran for a creation nobody subscribes to: %+v", hooked)
	}
	w, err := store.NewWebhooks(pool).Create(ctx, store.NewWebhook{URL: "https://example.com/hook", Events: []string{store.UserCreated}, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	if err != nil {
		t.Fatal(err)
	}
	subscribed, err := create("subscribed")
	if err != nil {
		t.Fatal(err)
	}
	if len(hooked) != 1 || hooked[0].User.ID != subscribed.ID || !slices.Equal(hooked[0].Subscribers, []int64{w.ID}) {
		t.Fatalf("hook got %+v, want the subscribed creation with subscriber %d", hooked, w.ID)
	}
	refuse = errors.New("refused")
	if _, err := create("refused"); !errors.Is(err, refuse) {
		t.Fatalf("Create with a failing hook = %v, want its error", err)
	}
	evs, _ := readAll(t, log, 0)
	var names []string
	for _, ev := range evs {
		var u struct{ Name string }
		_ = json.Unmarshal(ev.Data, &u)
		names = append(names, u.Name)
	}
	if want := []string{"alone", "subscribed"}; !slices.Equal(names, want) {
		t.Errorf("events of %q, want %q", names, want)
	}
}
