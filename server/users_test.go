package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"userapi/cache"
	"userapi/cache/cachetest"
	"userapi/gen"
	"userapi/server"
	"userapi/store"
	"userapi/store/storetest"
)

func TestUsers_Lifecycle(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)

	res := s.do("POST", "/users", map[string]any{"name": "Ada Lovelace", "email": "Ada@example.com"}).wantStatus(t, http.StatusCreated)
	u := res.user(t)
	if u.Name != "Ada Lovelace" || u.Email != "Ada@example.com" || u.Id < 1 {
		t.Errorf("POST /users = %+v, want the user as sent with an id", u)
	}
	if loc := res.header.Get("Location"); loc != "/users/"+strconv.FormatInt(u.Id, 10) {
		t.Errorf("Location = %q, want /users/%d", loc, u.Id)
	}
	if u.CreatedAt.Location() != time.UTC || !u.CreatedAt.Equal(u.UpdatedAt) {
		t.Errorf("created_at = %v, updated_at = %v; want equal UTC times", u.CreatedAt, u.UpdatedAt)
	}
	tag := res.header.Get("ETag")
	path := "/users/" + strconv.FormatInt(u.Id, 10)

	t.Run("GetWithETag", func(t *testing.T) {
		res := s.do("GET", path, nil).wantStatus(t, http.StatusOK)
		if got := res.user(t); got != u {
			t.Errorf("GET %s = %+v, want %+v", path, got, u)
		}
		if res.header.Get("ETag") != tag {
			t.Errorf("GET ETag = %q, want %q as on create", res.header.Get("ETag"), tag)
		}
		res = s.do("GET", path, nil, "If-None-Match", tag).wantStatus(t, http.StatusNotModified)
		if len(res.body) != 0 || res.header.Get("ETag") != tag {
			t.Errorf("304 answer: body %q, ETag %q; want no body and ETag %q", res.body, res.header.Get("ETag"), tag)
		}
		s.do("GET", path, nil, "If-None-Match", `"other", W/`+tag).wantStatus(t, http.StatusNotModified)
		s.do("GET", path, nil, "If-None-Match", `"999"`).wantStatus(t, http.StatusOK)
	})

	t.Run("PatchKeepsAbsentFields", func(t *testing.T) {
		res := s.do("PATCH", path, map[string]any{"name": "Ada King"}, "If-Match", tag).wantStatus(t, http.StatusOK)
		got := res.user(t)
		if got.Name != "Ada King" || got.Email != u.Email || !got.UpdatedAt.After(u.UpdatedAt) || !got.CreatedAt.Equal(u.CreatedAt) {
			t.Errorf("PATCH name = %+v, want new name, same email and created_at, later updated_at", got)
		}
		newTag := res.header.Get("ETag")
		if newTag == "" || newTag == tag {
			t.Errorf("PATCH ETag = %q, want a new one (old %q)", newTag, tag)
		}
		// The old ETag no longer matches.
		p := s.do("PUT", path, map[string]any{"name": "X", "email": "x@example.com"}, "If-Match", tag).wantStatus(t, http.StatusPreconditionFailed).problem(t)
		if p.Detail == "" {
			t.Error("412 without detail")
		}
		tag = newTag
	})

	t.Run("PutReplacesBoth", func(t *testing.T) {
		res := s.do("PUT", path, map[string]any{"name": "A. King", "email": "king@example.com"}, "If-Match", tag).wantStatus(t, http.StatusOK)
		got := res.user(t)
		if got.Name != "A. King" || got.Email != "king@example.com" {
			t.Errorf("PUT = %+v, want both fields replaced", got)
		}
		if got := s.do("GET", path, nil).user(t); got.Email != "king@example.com" {
			t.Errorf("GET after PUT = %+v, want the new email", got)
		}
		// Without If-Match the write is unconditional.
		s.do("PATCH", path, map[string]any{"email": "ada@example.com"}).wantStatus(t, http.StatusOK)
		s.do("PATCH", path, map[string]any{"email": "ada2@example.com"}, "If-Match", "*").wantStatus(t, http.StatusOK)
	})

	t.Run("Delete", func(t *testing.T) {
		s.do("DELETE", path, nil).wantStatus(t, http.StatusNoContent)
		p := s.do("GET", path, nil).wantStatus(t, http.StatusNotFound).problem(t)
		if want := fmt.Sprintf("user %d is deleted; undelete it (POST /users/%d/undelete) to see or change it", u.Id, u.Id); p.Detail != want {
			t.Errorf("404 detail = %q, want %q", p.Detail, want)
		}
		s.do("DELETE", path, nil).wantStatus(t, http.StatusNotFound)
		s.do("PATCH", path, map[string]any{"name": "Ghost"}).wantStatus(t, http.StatusNotFound)
		s.do("PUT", path, map[string]any{"name": "Ghost", "email": "g@example.com"}).wantStatus(t, http.StatusNotFound)
	})
}

func TestUsers_EmailTaken(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	s.do("POST", "/users", map[string]any{"name": "Ada", "email": "ada@example.com"}).wantStatus(t, http.StatusCreated)
	bob := s.do("POST", "/users", map[string]any{"name": "Bob", "email": "bob@example.com"}).wantStatus(t, http.StatusCreated).user(t)

	for _, res := range []response{
		s.do("POST", "/users", map[string]any{"name": "Ada 2", "email": "ADA@Example.COM"}),
		s.do("PATCH", fmt.Sprint("/users/", bob.Id), map[string]any{"email": "Ada@example.com"}),
		s.do("PUT", fmt.Sprint("/users/", bob.Id), map[string]any{"name": "Bob", "email": "ada@example.COM"}),
	} {
		// Its own type, and the field named, so that a form can show it there.
		p := res.wantStatus(t, http.StatusConflict).problem(t)
		want := []gen.FieldError{{Location: "body.email", Message: "is already taken by another user"}}
		if p.Type != gen.ProblemsemailTaken || p.Errors == nil || !slices.Equal(*p.Errors, want) {
			t.Errorf("409 = %+v, want type %s and errors %v", p, gen.ProblemsemailTaken, want)
		}
	}
}

// DELETE honours If-Match as PUT and PATCH do.
func TestUsers_DeleteIfMatch(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	res := s.do("POST", "/users", map[string]any{"name": "Ada", "email": "ada@example.com"}).wantStatus(t, http.StatusCreated)
	path, created := res.header.Get("Location"), res.header.Get("ETag")
	edited := s.do("PATCH", path, map[string]any{"name": "Ada King"}).wantStatus(t, http.StatusOK).header.Get("ETag")

	p := s.do("DELETE", path, nil, "If-Match", created).wantStatus(t, http.StatusPreconditionFailed).problem(t)
	if p.Type != gen.ProblemspreconditionFailed {
		t.Errorf("412 type = %q, want %q", p.Type, gen.ProblemspreconditionFailed)
	}
	s.do("GET", path, nil).wantStatus(t, http.StatusOK) // still there
	s.do("DELETE", path, nil, "If-Match", "W/"+edited).wantStatus(t, http.StatusPreconditionFailed)
	s.do("DELETE", path, nil, "If-Match", edited).wantStatus(t, http.StatusNoContent)
	s.do("DELETE", path, nil, "If-Match", "*").wantStatus(t, http.StatusNotFound)
}

// Every representation of a user carries the ETag a GET gives, so that an
// edit from a list row can send If-Match; through the cache too, after a change.
func TestUsers_ETagField(t *testing.T) {
	t.Parallel()
	db := store.NewUsers(storetest.NewPool(t))
	client := cachetest.NewClient(t, cache.Options{URL: cachetest.URL(), Prefix: cachetest.Prefix(t), Timeout: 5 * time.Second})
	s := newServerWith(t, cache.NewUsers(client, db), server.Options{Exporter: db})
	res := s.do("POST", "/users", map[string]any{"name": "Ada", "email": "ada@example.com"}).wantStatus(t, http.StatusCreated)
	path := res.header.Get("Location")
	check := func(step string) {
		t.Helper()
		get := s.do("GET", path, nil).wantStatus(t, http.StatusOK)
		tag := get.header.Get("ETag")
		u := get.user(t)
		list := s.do("GET", "/users", nil).wantStatus(t, http.StatusOK).page(t)
		var batch struct{ Items []gen.User }
		if err := json.Unmarshal(s.do("POST", "/users/batch-get", map[string]any{"ids": []int64{u.Id}}).wantStatus(t, http.StatusOK).body, &batch); err != nil {
			t.Fatal(err)
		}
		var exported gen.User
		if err := json.Unmarshal(s.do("GET", "/users/export?format=ndjson", nil).wantStatus(t, http.StatusOK).body, &exported); err != nil {
			t.Fatal(err)
		}
		for name, got := range map[string]string{"GET": u.Etag, "list": list.Items[0].Etag, "batch-get": batch.Items[0].Etag, "export": exported.Etag} {
			if got != tag {
				t.Errorf("%s: etag in %s = %q, want the ETag header %q", step, name, got, tag)
			}
		}
	}
	if u := res.user(t); u.Etag != res.header.Get("ETag") {
		t.Errorf("created: etag = %q, want the ETag header %q", u.Etag, res.header.Get("ETag"))
	}
	check("created")
	res = s.do("PATCH", path, map[string]any{"name": "Ada King"}).wantStatus(t, http.StatusOK)
	if u := res.user(t); u.Etag != res.header.Get("ETag") {
		t.Errorf("patched: etag = %q, want the ETag header %q", u.Etag, res.header.Get("ETag"))
	}
	check("patched")
}

// Addresses that differ only in Unicode form are one address: taken on
// create, and found by the email filter, which is displayed as typed.
func TestUsers_EmailTakenUnicodeForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, first, second string
	}{
		{"NFCThenNFD", "jos\u00e9@example.com", "jose\u0301@example.com"},
		{"NFDThenNFC", "jose\u0301@example.com", "jos\u00e9@example.com"},
		{"FullWidth", "ada@example.com", "\uff41\uff44\uff41@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com"},
		{"CaseFolding", "strasse@example.com", "STRA\u00dfE@example.com"},
		{"IDNDomain", "ada@b\u00fccher.example", "ADA@xn--bcher-kva.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, nil)
			u := s.do("POST", "/users", map[string]any{"name": "First", "email": tt.first}).wantStatus(t, http.StatusCreated).user(t)
			if u.Email != tt.first {
				t.Errorf("created email = %q, want %q as typed", u.Email, tt.first)
			}
			s.do("POST", "/users", map[string]any{"name": "Second", "email": tt.second}).wantStatus(t, http.StatusConflict)
			page := s.do("GET", "/users?email="+url.QueryEscape(tt.second), nil).wantStatus(t, http.StatusOK).page(t)
			if len(page.Items) != 1 || page.Items[0].Id != u.Id {
				t.Errorf("GET /users?email=%q = %+v, want user %d", tt.second, page.Items, u.Id)
			}
		})
	}
}

// Twenty simultaneous creates of one email: the database's unique index,
// not a check-then-insert, decides, so exactly one wins.
func TestUsers_CreateRace(t *testing.T) {
	t.Parallel()
	s := newServer(t, store.NewUsers(storetest.Pool(t, storetest.NewDB(t), 20)))
	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i] = s.do("POST", "/users", map[string]any{"name": fmt.Sprint("racer ", i), "email": "race@example.com"}).status
		})
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, st := range statuses {
		count[st]++
	}
	if count[http.StatusCreated] != 1 || count[http.StatusConflict] != n-1 {
		t.Errorf("%d concurrent creates of one email: statuses %v, want one 201 and %d 409", n, count, n-1)
	}
}

func TestUsers_List(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	var ids []int64
	for i := range 5 {
		u := s.do("POST", "/users", map[string]any{"name": fmt.Sprint("user ", i), "email": fmt.Sprintf("u%d@example.com", i)}).wantStatus(t, http.StatusCreated).user(t)
		ids = append(ids, u.Id)
	}

	t.Run("CursorVisitsAllOnce", func(t *testing.T) {
		var seen []int64
		path := "/users?limit=2"
		for range 10 {
			page := s.do("GET", path, nil).wantStatus(t, http.StatusOK).page(t)
			for _, u := range page.Items {
				seen = append(seen, u.Id)
			}
			if page.NextCursor == nil {
				break
			}
			path = "/users?limit=2&cursor=" + url.QueryEscape(*page.NextCursor)
		}
		if fmt.Sprint(seen) != fmt.Sprint(ids) {
			t.Errorf("cursor pages = %v, want %v", seen, ids)
		}
	})
	t.Run("DefaultLimit", func(t *testing.T) {
		page := s.do("GET", "/users", nil).wantStatus(t, http.StatusOK).page(t)
		if len(page.Items) != 5 || page.NextCursor != nil {
			t.Errorf("GET /users = %d items, next %v; want 5 and null", len(page.Items), page.NextCursor)
		}
	})
	t.Run("Offset", func(t *testing.T) {
		page := s.do("GET", "/users?offset=3&limit=1", nil).wantStatus(t, http.StatusOK).page(t)
		if len(page.Items) != 1 || page.Items[0].Id != ids[3] || page.NextCursor == nil {
			t.Fatalf("offset=3&limit=1 = %+v, want user %d and a cursor", page, ids[3])
		}
		// The cursor of an offset page continues after it.
		next := s.do("GET", "/users?cursor="+url.QueryEscape(*page.NextCursor), nil).wantStatus(t, http.StatusOK).page(t)
		if len(next.Items) != 1 || next.Items[0].Id != ids[4] {
			t.Errorf("after offset page = %+v, want user %d", next, ids[4])
		}
	})
	t.Run("EmailFilter", func(t *testing.T) {
		page := s.do("GET", "/users?email=U2@EXAMPLE.com", nil).wantStatus(t, http.StatusOK).page(t)
		if len(page.Items) != 1 || page.Items[0].Id != ids[2] {
			t.Errorf("email=U2@EXAMPLE.com = %+v, want only user %d", page, ids[2])
		}
	})
	t.Run("Empty", func(t *testing.T) {
		page := s.do("GET", "/users?email=nobody@example.com", nil).wantStatus(t, http.StatusOK)
		if strings.TrimSpace(string(page.body)) != `{"items":[],"next_cursor":null}` {
			t.Errorf("empty page body = %s, want an empty items array and a null cursor", page.body)
		}
	})
}

func TestUsers_BatchGet(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	var ids []int64
	for i := range 3 {
		u := s.do("POST", "/users", map[string]any{"name": fmt.Sprint("user ", i), "email": fmt.Sprintf("b%d@example.com", i)}).wantStatus(t, http.StatusCreated).user(t)
		ids = append(ids, u.Id)
	}
	unknown := ids[2] + 1000
	res := s.do("POST", "/users/batch-get", map[string]any{"ids": []int64{ids[2], unknown, ids[0], ids[2]}}).wantStatus(t, http.StatusOK)
	var got struct {
		Items   []struct{ Id int64 } `json:"items"`
		Missing []int64              `json:"missing"`
	}
	mustJSON(t, res.body, &got)
	var gotIDs []int64
	for _, u := range got.Items {
		gotIDs = append(gotIDs, u.Id)
	}
	if fmt.Sprint(gotIDs) != fmt.Sprint([]int64{ids[2], ids[0]}) || fmt.Sprint(got.Missing) != fmt.Sprint([]int64{unknown}) {
		t.Errorf("batch-get = items %v, missing %v; want items %v in request order and missing [%d]", gotIDs, got.Missing, []int64{ids[2], ids[0]}, unknown)
	}
}
