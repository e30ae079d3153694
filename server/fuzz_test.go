package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"userapi/auth"
	"userapi/jobs"
	"userapi/server"
	"userapi/store"
	"userapi/store/storetest"
)

// fuzzMethods are the methods a fuzzed request picks from.
var fuzzMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "BREW"}

// Arbitrary requests to the real handler, over a real database and job
// queue, never panic and never fail with a 5xx other than 503, and every
// error is a problem document whose status matches the answer's.
func FuzzRequest(f *testing.F) {
	seeds := []struct {
		method      byte
		path, query string
		contentType string
		body        string
	}{
		{1, "/users", "", "application/json", `{"name":"Ada","email":"ada@example.com"}`},
		{1, "/users", "", "application/json", `{"name":"\u0000","email":"a\u0000@example.com"}`},
		{1, "/users", "", "application/json", `{"name":"A\u0000","email":"nul@example.com"}`},
		{1, "/users", "", "application/json", "{\"name\":\"\xff\xfe\",\"email\":\"bad-utf8@example.com\"}"},
		{1, "/users", "", "application/json", `{"name":"Ada","email":"ada@example.com","x":1}`},
		{1, "/users", "", "application/json", `{"name":`},
		{1, "/users", "", "text/plain", `hello`},
		{1, "/users", "", "application/json", `[1,2,3]`},
		{1, "/users/batch-get", "", "application/json", `{"ids":[1,9223372036854775807,-1]}`},
		{1, "/users/batch-get", "", "application/json", `{"ids":[1e400]}`},
		{0, "/users", "limit=0&cursor=%00", "", ""},
		{0, "/users", "limit=99999999999999999999&offset=-1", "", ""},
		{0, "/users", "cursor=YWZ0ZXI6MQ&offset=1", "", ""},
		{0, "/users", "email=%E0%80%80", "", ""},
		{0, "/users/9223372036854775808", "", "", ""},
		{0, "/users/%2e%2e", "", "", ""},
		{2, "/users/1", "", "application/json", `{"name":"B","email":"b@example.com"}`},
		{3, "/users/1", "", "application/merge-patch+json", `{"email":null}`},
		{4, "/users/0", "", "", ""},
		{1, "/users/1/process", "", "", ""},
		{0, "/jobs/-5", "", "", ""},
		{1, "/webhooks", "", "application/json", `{"url":"http://10.0.0.1/","events":["user.created"]}`},
		{1, "/webhooks", "", "application/json", `{"url":"ftp://\u0000","events":[]}`},
		{0, "/webhooks/1/deliveries", "limit=abc", "", ""},
		{8, "/users", "", "", ""},
		{0, "/health", "", "", ""},
		{0, "/docs/../openapi.yaml", "", "", ""},
		{0, "/docs/no-such-file.js", "", "", ""},
		{0, "/docs/index.html", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, s.contentType, []byte(s.body))
	}
	pool := storetest.Pool(f, storetest.NewDB(f), 4)
	q, err := jobs.New(pool, jobs.Options{}) // inserts jobs; runs none
	if err != nil {
		f.Fatal(err)
	}
	h, err := server.New(slog.New(slog.DiscardHandler), store.NewUsers(pool).WithHook(q.UserHook()), server.Options{
		Jobs: q, Webhooks: store.NewWebhooks(pool),
		Checks: []server.Check{{Name: "database", Required: true, Probe: pool.Ping}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method byte, path, query, contentType string, body []byte) {
		m := fuzzMethods[int(method)%len(fuzzMethods)]
		target := "http://userapi" + "/" + strings.TrimPrefix(path, "/")
		if query != "" {
			target += "?" + query
		}
		req, err := http.NewRequest(m, target, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.RequestURI = req.URL.RequestURI() // as the server sets it
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, m, target, body, rec)
	})
}

// checkAnswer fails t unless res is a success, or an error that is not a
// 5xx other than 503 and comes as a matching problem document.
func checkAnswer(t *testing.T, method, target string, body []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	res := rec.Result()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("%s %s %q = %d %s, want no 5xx but 503", method, target, body, res.StatusCode, raw)
	}
	if res.StatusCode < 400 || method == "HEAD" {
		return
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s %s %q = %d with Content-Type %q, want application/problem+json", method, target, body, res.StatusCode, ct)
	}
	var p struct{ Status int }
	if err := json.Unmarshal(raw, &p); err != nil || p.Status != res.StatusCode {
		t.Fatalf("%s %s %q = %d with problem %s, want a problem with status %d", method, target, body, res.StatusCode, raw, res.StatusCode)
	}
}

// Arbitrary Authorization headers, where "{key}" stands for a real admin
// key: only that key, as a Bearer token, ever gets in; everything else is a
// 401 problem with a challenge, and nothing is a 5xx.
func FuzzAuthorization(f *testing.F) {
	for _, s := range []string{
		"Bearer {key}", "bearer {key}", "BEARER  {key} ", "Bearer {key}x", "Bearer x{key}", "Bearer {key}{key}",
		"Basic {key}", "Bearer", "Bearer ", "{key}", "Bearer uak_", "Bearer uak_aaaaaaaa_", "Bearer \x00{key}",
		"Bearer uak_AAAAAAAA_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "Bearer uak_aaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	} {
		f.Add(s)
	}
	pool := storetest.Pool(f, storetest.NewDB(f), 4)
	keys := store.NewAPIKeys(pool)
	k := auth.Generate()
	if _, err := keys.Create(context.Background(), store.NewAPIKey{Prefix: k.Prefix, Hash: k.Hash, Name: "fuzz", Scopes: []string{auth.ScopeAdmin}}); err != nil {
		f.Fatal(err)
	}
	h, err := server.New(slog.New(slog.DiscardHandler), store.NewUsers(pool), server.Options{
		Auth: auth.NewChecker(keys, keys, slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string) {
		header = strings.ReplaceAll(header, "{key}", k.Key)
		req := httptest.NewRequest("GET", "/users?limit=1", nil)
		req.Header["Authorization"] = []string{header}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		scheme, token, _ := strings.Cut(header, " ")
		exact := strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(token) == k.Key
		switch {
		case rec.Code == http.StatusOK && !exact:
			t.Fatalf("Authorization %q got in", header)
		case rec.Code == http.StatusOK:
		case rec.Code == http.StatusUnauthorized && !exact:
			if rec.Header().Get("WWW-Authenticate") == "" {
				t.Fatalf("Authorization %q: 401 without WWW-Authenticate", header)
			}
			checkAnswer(t, "GET", "/users", nil, rec)
		default:
			t.Fatalf("Authorization %q = %d %s", header, rec.Code, rec.Body)
		}
	})
}

// Any Idempotency-Key and body sent twice to POST /users get no 5xx other
// than 503, a problem for every error, and the same answer both times: a
// success is replayed byte for byte, an error is an error again.
func FuzzIdempotencyKey(f *testing.F) {
	seeds := []struct{ key, body string }{
		{"abc", `{"name":"Ada","email":"ada@example.com"}`},
		{`"abc"`, `{"name":"Ada","email":"ada@example.com"}`},
		{"abc", `{"name":"Bob","email":"bob@example.com"}`},
		{`"a\"b"`, `{"name":"Cy","email":"cy@example.com"}`},
		{`"unterminated`, `{"name":"Di","email":"di@example.com"}`},
		{"", `{"name":"Ed","email":"ed@example.com"}`},
		{"\x00\r\n", `{"name":"Fay","email":"fay@example.com"}`},
		{"ключ", `{"name":"Gus","email":"gus@example.com"}`},
		{strings.Repeat("k", 256), `{"name":"Hal","email":"hal@example.com"}`},
		{"bad-body", `{"name":`},
		{"extra-field", `{"name":"Ida","email":"ida@example.com","x":1}`},
		{"nul-name", `{"name":"\u0000","email":"nul@example.com"}`},
	}
	for _, s := range seeds {
		f.Add(s.key, []byte(s.body))
	}
	pool := storetest.Pool(f, storetest.NewDB(f), 4)
	q, err := jobs.New(pool, jobs.Options{})
	if err != nil {
		f.Fatal(err)
	}
	h, err := server.New(slog.New(slog.DiscardHandler), store.NewUsers(pool).WithHook(q.UserHook()), server.Options{
		Jobs: q, Webhooks: store.NewWebhooks(pool), Idempotency: store.NewIdempotency(pool),
	})
	if err != nil {
		f.Fatal(err)
	}
	send := func(t *testing.T, key string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "http://userapi/users", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header["Idempotency-Key"] = []string{key} // as sent, unchecked by a client
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, "POST", "/users", body, rec)
		return rec
	}
	f.Fuzz(func(t *testing.T, key string, body []byte) {
		first, again := send(t, key, body), send(t, key, body)
		if again.Code != first.Code {
			t.Fatalf("key %q body %q: %d then %d, want the same answer", key, body, first.Code, again.Code)
		}
		if first.Code >= 200 && first.Code < 300 {
			if !bytes.Equal(again.Body.Bytes(), first.Body.Bytes()) || again.Header().Get("Idempotent-Replayed") != "true" {
				t.Fatalf("key %q body %q: replay %s (Idempotent-Replayed %q), want %s again",
					key, body, again.Body, again.Header().Get("Idempotent-Replayed"), first.Body)
			}
			return
		}
		var p1, p2 struct{ Detail string }
		_ = json.Unmarshal(first.Body.Bytes(), &p1)
		_ = json.Unmarshal(again.Body.Bytes(), &p2)
		if p1.Detail != p2.Detail {
			t.Fatalf("key %q body %q: %q then %q, want the same error", key, body, p1.Detail, p2.Detail)
		}
	})
}
