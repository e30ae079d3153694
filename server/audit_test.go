package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"userapi/auth"
	"userapi/gen"
	"userapi/server"
	"userapi/store"
	"userapi/store/storetest"
)

// errRefusedByHook is what the test's user-change hook fails with, rolling
// the change back.
var errRefusedByHook = errors.New("refused by the test hook")

// Eight writers at once, through the HTTP server: creates (some sent with
// an Idempotency-Key and then replayed), updates and deletes that commit,
// creates that fail validation, and creates a failing user-change hook
// rolls back. The audit log ends with exactly one entry per committed
// write, each naming its writer and the X-Request-ID of its answer.
func TestAudit_OneEntryPerCommittedWrite(t *testing.T) {
	t.Parallel()
	s := newIdemServer(t, idemOptions{hook: func(_ context.Context, _ pgx.Tx, ev store.UserEvent) error {
		if strings.HasPrefix(ev.User.Name, "rollback") {
			return errRefusedByHook
		}
		return nil
	}})
	const writers, rounds = 8, 6
	var mu sync.Mutex
	committed := map[string]string{} // X-Request-ID → writer
	var replays, refused int
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			writer := fmt.Sprintf("uak_writer%02d", w)
			as := []string{server.TestCallerHeader, writer}
			commit := func(r response) {
				mu.Lock()
				defer mu.Unlock()
				committed[r.header.Get("X-Request-ID")] = writer
			}
			for i := range rounds {
				email := fmt.Sprintf("w%d-%d@example.com", w, i)
				body := map[string]string{"name": fmt.Sprintf("Writer %d", w), "email": email}
				var created response
				if i%2 == 0 {
					key := []string{"Idempotency-Key", "create-" + email}
					created = s.do("POST", "/users", body, append(as, key...)...)
					again := s.do("POST", "/users", body, append(as, key...)...)
					if again.status != http.StatusCreated || again.header.Get("Idempotent-Replayed") != "true" {
						t.Errorf("retry with the Idempotency-Key = %d %s, want the 201 replayed", again.status, again.body)
					}
					mu.Lock()
					replays++
					mu.Unlock()
				} else {
					created = s.do("POST", "/users", body, as...)
				}
				if created.status != http.StatusCreated {
					t.Errorf("POST /users = %d %s", created.status, created.body)
					continue
				}
				commit(created)
				id := created.user(t).Id

				invalid := s.do("POST", "/users", map[string]string{"name": "Bad", "email": "not an email"}, as...)
				rolledBack := s.do("POST", "/users", map[string]string{"name": "rollback " + email, "email": "rb-" + email}, as...)
				if invalid.status != http.StatusUnprocessableEntity || rolledBack.status != http.StatusInternalServerError {
					t.Errorf("invalid create = %d, create the hook refuses = %d %s; want 422 and 500", invalid.status, rolledBack.status, rolledBack.body)
				}
				mu.Lock()
				refused += 2
				mu.Unlock()

				updated := s.do("PATCH", fmt.Sprint("/users/", id), map[string]string{"name": fmt.Sprintf("Writer %d again", w)}, as...)
				if updated.status != http.StatusOK {
					t.Errorf("PATCH = %d %s", updated.status, updated.body)
					continue
				}
				commit(updated)
				if i%3 == 0 {
					deleted := s.do("DELETE", fmt.Sprint("/users/", id), nil, as...)
					if deleted.status != http.StatusNoContent {
						t.Errorf("DELETE = %d %s", deleted.status, deleted.body)
						continue
					}
					commit(deleted)
				}
			}
		})
	}
	wg.Wait()

	rows, err := s.pool.Query(context.Background(), "SELECT request_id, actor FROM audit_log")
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]string{}
	entries := 0
	for rows.Next() {
		var requestID, actor string
		if err := rows.Scan(&requestID, &actor); err != nil {
			t.Fatal(err)
		}
		entries++
		recorded[requestID] = actor
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d committed writes, %d replays and %d refused writes: %d audit entries", len(committed), replays, refused, entries)
	if entries != len(committed) {
		t.Errorf("%d audit entries for %d committed writes (%d replays, %d refused writes), want one each", entries, len(committed), replays, refused)
	}
	for requestID, writer := range committed {
		if recorded[requestID] != writer {
			t.Errorf("the write of request %s by %s is recorded as by %q", requestID, writer, recorded[requestID])
		}
	}
}

// auditServer serves with API keys and the audit log, logging to log, and
// returns a function that makes keys.
func auditServer(t *testing.T, log *syncBuffer) (*testServer, func(scopes ...string) (key, prefix string)) {
	t.Helper()
	pool := storetest.Pool(t, storetest.NewDB(t), 4)
	keys := store.NewAPIKeys(pool)
	e, err := server.New(slog.New(slog.NewJSONHandler(log, nil)), store.NewUsers(pool), server.Options{
		Auth:     auth.NewChecker(keys, keys, slog.New(slog.DiscardHandler)),
		Webhooks: store.NewWebhooks(pool), WebhookAllowPrivate: true,
		Audit: store.NewAudit(pool),
	})
	if err != nil {
		t.Fatal(err)
	}
	makeKey := func(scopes ...string) (string, string) {
		k := auth.Generate()
		if _, err := keys.Create(context.Background(), store.NewAPIKey{Prefix: k.Prefix, Hash: k.Hash, Name: "test", Scopes: scopes}); err != nil {
			t.Fatal(err)
		}
		return k.Key, k.Prefix
	}
	return serveEcho(t, e), makeKey
}

func (r response) auditPage(t *testing.T) gen.AuditPage {
	t.Helper()
	var p gen.AuditPage
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("body %s is not an audit page: %v", r.body, err)
	}
	return p
}

// GET /audit lists the changes newest first, with what each changed, by
// actor or by target, in pages that follow next_after to the end; it needs
// the scope audit:read (or admin), and never shows a secret. The access log
// holds none of the personal data the entries do.
func TestAudit_ListFiltersAndPages(t *testing.T) {
	t.Parallel()
	var log syncBuffer
	s, makeKey := auditServer(t, &log)
	alice, alicePrefix := makeKey(auth.ScopeAdmin)
	bob, bobPrefix := makeKey(auth.ScopeUsersWrite)
	as := func(key string) []string { return []string{"Authorization", "Bearer " + key} }

	ada := s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}, as(alice)...).wantStatus(t, http.StatusCreated).user(t)
	s.do("PATCH", fmt.Sprint("/users/", ada.Id), map[string]string{"name": "Ada King"}, as(bob)...).wantStatus(t, http.StatusOK)
	hook := s.do("POST", "/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"user.created"}}, as(alice)...).wantStatus(t, http.StatusCreated)
	var wh gen.WebhookWithSecret
	if err := json.Unmarshal(hook.body, &wh); err != nil {
		t.Fatal(err)
	}
	rotated := s.do("POST", fmt.Sprintf("/webhooks/%d/rotate-secret", wh.Id), nil, as(alice)...).wantStatus(t, http.StatusOK)
	s.do("DELETE", fmt.Sprint("/users/", ada.Id), nil, as(bob)...).wantStatus(t, http.StatusNoContent)

	all := s.do("GET", "/audit", nil, as(alice)...).wantStatus(t, http.StatusOK).auditPage(t)
	var changes []gen.AuditEntry // those of the requests, not the keys' creation
	var actions []string
	for _, e := range all.Items {
		if !strings.HasPrefix(e.Target, "key:") {
			changes = append(changes, e)
			actions = append(actions, e.Action+" "+e.Target+" by "+e.Actor)
		}
	}
	want := []string{
		fmt.Sprintf("user.deleted user:%d by %s", ada.Id, bobPrefix),
		fmt.Sprintf("webhook.secret_rotated webhook:%d by %s", wh.Id, alicePrefix),
		fmt.Sprintf("webhook.created webhook:%d by %s", wh.Id, alicePrefix),
		fmt.Sprintf("user.updated user:%d by %s", ada.Id, bobPrefix),
		fmt.Sprintf("user.created user:%d by %s", ada.Id, alicePrefix),
	}
	if !slices.Equal(actions, want) || all.NextAfter != nil {
		t.Fatalf("GET /audit = %q (next_after %v), want %q and no next page", actions, all.NextAfter, want)
	}
	update := changes[3]
	if before, after := *update.Before, *update.After; len(before) != 1 || before["name"] != "Ada" || len(after) != 1 || after["name"] != "Ada King" {
		t.Errorf("the update's diff = %v → %v, want name Ada → Ada King alone", before, after)
	}
	if created := changes[4]; created.Before != nil || (*created.After)["email"] != "ada@example.com" {
		t.Errorf("the creation's diff = %v → %v, want nothing before and the email after", created.Before, created.After)
	}
	if deleted := changes[0]; deleted.Before == nil || deleted.After == nil || (*deleted.Before)["state"] != "active" || (*deleted.After)["state"] != "deleted" {
		t.Errorf("the deletion's diff = %v → %v, want state active → deleted", deleted.Before, deleted.After)
	}
	var secret gen.WebhookSecret
	if err := json.Unmarshal(rotated.body, &secret); err != nil {
		t.Fatal(err)
	}
	listed := s.do("GET", "/audit", nil, as(alice)...)
	for _, sec := range []string{wh.Secret, secret.Secret} {
		if strings.Contains(string(listed.body), sec) {
			t.Errorf("GET /audit shows a webhook secret: %s", listed.body)
		}
	}

	byBob := s.do("GET", "/audit?actor="+bobPrefix, nil, as(alice)...).wantStatus(t, http.StatusOK).auditPage(t)
	if len(byBob.Items) != 2 || byBob.Items[0].Action != "user.deleted" || byBob.Items[1].Action != "user.updated" {
		t.Errorf("GET /audit?actor=%s = %+v, want bob's delete and update", bobPrefix, byBob.Items)
	}
	ofHook := s.do("GET", fmt.Sprintf("/audit?target=webhook:%d", wh.Id), nil, as(alice)...).wantStatus(t, http.StatusOK).auditPage(t)
	if len(ofHook.Items) != 2 || ofHook.Items[0].RequestId != rotated.header.Get("X-Request-ID") {
		t.Errorf("GET /audit?target=webhook:%d = %+v, want its two changes, the newest from request %s", wh.Id, ofHook.Items, rotated.header.Get("X-Request-ID"))
	}

	// Two at a time, the same entries in the same order, then no next page.
	var paged []int64
	path := "/audit?limit=2"
	for range len(all.Items) {
		page := s.do("GET", path, nil, as(alice)...).wantStatus(t, http.StatusOK).auditPage(t)
		for _, e := range page.Items {
			paged = append(paged, e.Id)
		}
		if page.NextAfter == nil {
			break
		}
		path = fmt.Sprintf("/audit?limit=2&after=%d", *page.NextAfter)
	}
	var ids []int64
	for _, e := range all.Items {
		ids = append(ids, e.Id)
	}
	if !slices.Equal(paged, ids) {
		t.Errorf("pages of 2 = ids %v, want %v", paged, ids)
	}

	if r := s.do("GET", "/audit", nil, as(bob)...); r.status != http.StatusForbidden || !strings.Contains(r.problem(t).Detail, "audit:read") {
		t.Errorf("GET /audit with users:write = %d %s, want 403 naming audit:read", r.status, r.body)
	}
	reader, _ := makeKey(auth.ScopeAuditRead)
	if r := s.do("GET", "/audit?limit=1", nil, as(reader)...).wantStatus(t, http.StatusOK).auditPage(t); len(r.Items) != 1 {
		t.Errorf("GET /audit with audit:read = %+v, want one entry", r.Items)
	}
	if r := s.do("GET", "/audit?limit=0", nil, as(reader)...); r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), "query.limit") {
		t.Errorf("GET /audit?limit=0 = %d %s, want 422 naming query.limit", r.status, r.body)
	}
	s.do("GET", "/audit?target=user:1&actor="+alicePrefix, nil, as(alice)...).wantStatus(t, http.StatusOK)
	logged := log.String()
	if !strings.Contains(logged, `"path":"/audit"`) {
		t.Fatalf("the access log has no GET /audit: %s", logged)
	}
	for _, personal := range []string{"Ada", "ada@example.com"} {
		if strings.Contains(logged, personal) {
			t.Errorf("the access log holds %q: %s", personal, logged)
		}
	}
}
