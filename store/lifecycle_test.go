package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"userapi/store"
)

// Each change hands the hook the row before it (none on create) and after
// it, in the event of its type; a move to the state the user is in already
// records nothing.
func TestUsers_EventsCarryBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var seen []store.UserEvent
	users := newUsers(t).WithHook(func(_ context.Context, _ pgx.Tx, ev store.UserEvent) error {
		seen = append(seen, ev)
		return nil
	})
	u, err := users.Create(ctx, store.NewUser{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.Update(ctx, u.ID, store.UserChange{Name: ptr("Ada L.")}); err != nil {
		t.Fatal(err)
	}
	for _, tr := range []store.Transition{store.Suspend, store.Suspend, store.Reactivate, store.Delete, store.Undelete} {
		if _, err := users.Transition(ctx, u.ID, tr, nil); err != nil {
			t.Fatalf("%s: %v", tr.Name, err)
		}
	}
	if err := users.Purge(ctx, u.ID, nil); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ           string
		before, after store.UserState
		named         string
	}{
		{store.UserCreated, "", store.StateActive, "Ada"},
		{store.UserUpdated, store.StateActive, store.StateActive, "Ada L."},
		{store.UserSuspended, store.StateActive, store.StateSuspended, "Ada L."},
		{store.UserReactivated, store.StateSuspended, store.StateActive, "Ada L."},
		{store.UserDeleted, store.StateActive, store.StateDeleted, "Ada L."},
		{store.UserUndeleted, store.StateDeleted, store.StateActive, "Ada L."},
		{store.UserPurged, store.StateActive, store.StateActive, "Ada L."},
	}
	if len(seen) != len(want) {
		t.Fatalf("%d events, want %d", len(seen), len(want))
	}
	for i, w := range want {
		ev := seen[i]
		if ev.Type != w.typ || ev.User.State != w.after || ev.User.Name != w.named {
			t.Errorf("event %d = %s, user %+v; want %s, state %s", i, ev.Type, ev.User, w.typ, w.after)
		}
		switch {
		case i == 0 && ev.Before != nil:
			t.Errorf("create's Before = %+v, want nil", ev.Before)
		case i > 0 && (ev.Before == nil || ev.Before.State != w.before || ev.Before.Version != seen[i-1].User.Version):
			t.Errorf("event %d (%s) Before = %+v, want the row after event %d", i, ev.Type, ev.Before, i-1)
		}
		if (ev.Data == nil) != (ev.Type == store.UserPurged) {
			t.Errorf("event %d (%s) data = %s; only a purge's has none", i, ev.Type, ev.Data)
		}
	}
}

// Lists, counts and exports leave deleted users out unless asked, and
// filter by state.
func TestUsers_ListHidesDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := newUsers(t)
	ids := map[store.UserState]int64{}
	for _, st := range store.UserStates {
		u, err := users.Create(ctx, store.NewUser{Name: string(st), Email: string(st) + "@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		ids[st] = u.ID
	}
	if _, err := users.Transition(ctx, ids[store.StateSuspended], store.Suspend, nil); err != nil {
		t.Fatal(err)
	}
	if err := users.Delete(ctx, ids[store.StateDeleted], nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		q    store.UserQuery
		want []store.UserState
	}{
		{"Default", store.UserQuery{}, []store.UserState{store.StateActive, store.StateSuspended}},
		{"ShowDeleted", store.UserQuery{ShowDeleted: true}, store.UserStates},
		{"Suspended", store.UserQuery{State: ptr(store.StateSuspended)}, []store.UserState{store.StateSuspended}},
		{"DeletedHidden", store.UserQuery{State: ptr(store.StateDeleted)}, nil},
		{"Deleted", store.UserQuery{State: ptr(store.StateDeleted), ShowDeleted: true}, []store.UserState{store.StateDeleted}},
		{"SearchHidesDeleted", store.UserQuery{Search: "dele"}, nil},
	} {
		page, err := users.List(ctx, store.UserFilter{UserQuery: tc.q, Limit: 10, Count: store.CountExact})
		if err != nil {
			t.Fatal(err)
		}
		var got []store.UserState
		for _, u := range page.Users {
			got = append(got, u.State)
		}
		if !slices.Equal(got, tc.want) || page.Total.N != int64(len(tc.want)) {
			t.Errorf("%s: listed %v (total %d), want %v", tc.name, got, page.Total.N, tc.want)
		}
		var exported []store.UserState
		if err := users.Export(ctx, tc.q, func(u store.User) error { exported = append(exported, u.State); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(exported, tc.want) {
			t.Errorf("%s: exported %v, want %v", tc.name, exported, tc.want)
		}
	}
}

// A deleted user keeps its email address until it is purged: taking it is
// a *DeletedEmailError naming the user; after the purge it is free.
func TestUsers_DeletedUserKeepsItsEmail(t *testing.T) {
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
	if err := users.Delete(ctx, u.ID, nil); err != nil {
		t.Fatal(err)
	}
	var deleted *store.DeletedEmailError
	if _, err := users.Create(ctx, store.NewUser{Name: "Ada 2", Email: "ADA@example.com"}); !errors.As(err, &deleted) || deleted.UserID != u.ID || !errors.Is(err, store.ErrConflict) {
		t.Errorf("Create(deleted user's email) error = %v, want a DeletedEmailError naming %d", err, u.ID)
	}
	if _, err := users.Update(ctx, other.ID, store.UserChange{Email: ptr("ada@example.com")}); !errors.As(err, &deleted) {
		t.Errorf("Update(to the deleted user's email) error = %v, want a DeletedEmailError", err)
	}
	if _, err := users.Create(ctx, store.NewUser{Name: "Bob 2", Email: "bob@example.com"}); err == nil || errors.As(err, &deleted) {
		t.Errorf("Create(active user's email) error = %v, want a plain conflict", err)
	}
	if err := users.Purge(ctx, u.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := users.Create(ctx, store.NewUser{Name: "Ada 2", Email: "ada@example.com"}); err != nil {
		t.Errorf("Create(purged user's email) error = %v, want it free", err)
	}
}

// The purge job's sweep erases the users deleted before the time given,
// and only them.
func TestUsers_PurgeDeletedBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := newUsers(t)
	var ids []int64
	for _, name := range []string{"old", "recent", "active"} {
		u, err := users.Create(ctx, store.NewUser{Name: name, Email: name + "@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	if err := users.Delete(ctx, ids[0], nil); err != nil {
		t.Fatal(err)
	}
	cutoff := time.Now()
	time.Sleep(10 * time.Millisecond) // deleted_at is the transaction's start
	if err := users.Delete(ctx, ids[1], nil); err != nil {
		t.Fatal(err)
	}
	n, err := users.PurgeDeletedBefore(ctx, cutoff, 10)
	if err != nil || n != 1 {
		t.Fatalf("PurgeDeletedBefore = %d, %v, want 1 purged", n, err)
	}
	if _, err := users.Get(ctx, ids[0]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(deleted before the cutoff) error = %v, want ErrNotFound", err)
	}
	for _, id := range ids[1:] {
		if _, err := users.Get(ctx, id); err != nil {
			t.Errorf("Get(%d) error = %v, want it kept", id, err)
		}
	}
}
