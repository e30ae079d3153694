package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"userapi/gen"
	"userapi/server"
	"userapi/store"
	"userapi/store/storetest"
)

func (r response) events(t *testing.T) gen.EventPage {
	t.Helper()
	var p gen.EventPage
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("body %s is not a page of events: %v", r.body, err)
	}
	return p
}

// GET /events pages oldest first with next_after, filters by type and
// user, and answers 410, saying where the log starts, behind what was
// trimmed. Every answer is checked against openapi.yaml.
func TestListEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.Pool(t, storetest.QuietDB(t), 4)
	log := store.NewEvents(pool)
	srv := newServerWith(t, store.NewUsers(pool), server.Options{Events: log})

	ada := srv.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}).wantStatus(t, http.StatusCreated).user(t)
	srv.do("POST", "/users", map[string]string{"name": "Bob", "email": "bob@example.com"}).wantStatus(t, http.StatusCreated)
	srv.do("PATCH", fmt.Sprintf("/users/%d", ada.Id), map[string]string{"email": "ada@lovelace.example"}).wantStatus(t, http.StatusOK)
	srv.do("DELETE", fmt.Sprintf("/users/%d", ada.Id), nil).wantStatus(t, http.StatusNoContent)

	var all []gen.Event
	for after := int64(0); ; {
		page := srv.do("GET", fmt.Sprintf("/events?limit=3&after=%d", after), nil).wantStatus(t, http.StatusOK).events(t)
		all = append(all, page.Items...)
		if len(page.Items) == 3 && page.NextAfter != page.Items[2].Id {
			t.Errorf("full page's next_after = %d, want its last id %d", page.NextAfter, page.Items[2].Id)
		}
		if page.NextAfter < after {
			t.Fatalf("next_after went back from %d to %d", after, page.NextAfter)
		}
		after = page.NextAfter
		if len(page.Items) < 3 {
			break
		}
	}
	var types []gen.EventType
	for _, ev := range all {
		types = append(types, ev.Type)
	}
	if want := []gen.EventType{gen.UserCreated, gen.UserCreated, gen.UserUpdated, gen.UserDeleted}; !slices.Equal(types, want) {
		t.Fatalf("GET /events types = %v, want %v", types, want)
	}
	if ch := all[2].Changed; ch == nil || !slices.Equal(*ch, []gen.EventChanged{gen.EventChangedEmail}) || all[3].Data.Email != "ada@lovelace.example" {
		t.Errorf("update changed %v, delete's data %+v; want [email], and the user as it last was", ch, all[3].Data)
	}

	updates := srv.do("GET", "/events?type=user.updated&type=user.deleted", nil).wantStatus(t, http.StatusOK).events(t)
	if len(updates.Items) != 2 || updates.Items[0].Type != gen.UserUpdated {
		t.Errorf("type=user.updated&type=user.deleted gave %d events, want the update and the delete", len(updates.Items))
	}
	bobs := srv.do("GET", fmt.Sprintf("/events?user_id=%d", all[1].UserId), nil).wantStatus(t, http.StatusOK).events(t)
	if len(bobs.Items) != 1 || bobs.Items[0].Data.Name != "Bob" {
		t.Errorf("user_id filter gave %+v, want Bob's creation alone", bobs.Items)
	}

	if _, err := pool.Exec(ctx, "UPDATE events SET occurred_at = now() - interval '100 days' WHERE id <= $1", all[1].Id); err != nil {
		t.Fatal(err)
	}
	if _, err := log.Trim(ctx, 24*3600e9, 100); err != nil {
		t.Fatal(err)
	}
	gone := srv.do("GET", fmt.Sprintf("/events?after=%d", all[0].Id), nil).wantStatus(t, http.StatusGone).problem(t)
	if !strings.Contains(gone.Detail, fmt.Sprintf("starts after event %d", all[1].Id)) {
		t.Errorf("410 detail = %q, want it to say the log starts after %d", gone.Detail, all[1].Id)
	}
	kept := srv.do("GET", "/events", nil).wantStatus(t, http.StatusOK).events(t)
	if len(kept.Items) != 2 || kept.Items[0].Id != all[2].Id {
		t.Errorf("GET /events after trimming lists %d events, want the 2 kept", len(kept.Items))
	}
	srv.do("GET", "/events?limit=0", nil).wantStatus(t, http.StatusUnprocessableEntity)
}
