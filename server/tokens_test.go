package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"userapi/accesstoken"
	"userapi/accesstoken/issuertest"
	"userapi/ratelimit"
	"userapi/server"
	"userapi/store"
)

// tokenServer serves with API keys (keyChecker: "good") and the tokens of
// a local issuer, reads limited to reads per caller; it returns the issuer
// and the access log.
func tokenServer(t *testing.T, reads string) (*testServer, *issuertest.Issuer, *lockedBuffer) {
	t.Helper()
	iss := issuertest.New(t)
	v, err := accesstoken.New(context.Background(), accesstoken.Config{Issuer: iss.URL, Audience: issuertest.Audience})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	logs := &lockedBuffer{}
	users := fakeUsers{GetFn: func(id int64) (store.User, error) {
		return store.User{ID: id, Name: "Ada", Email: "ada@example.com", Version: 1, CreatedAt: time.Now(), UpdatedAt: time.Now(), State: store.StateActive}, nil
	}}
	e, err := server.New(slog.New(slog.NewJSONHandler(logs, nil)), users, server.Options{
		Auth: keyChecker{}, Tokens: v,
		RateLimit: &server.RateLimit{Limiter: ratelimit.NewMemory(100), Reads: mustPolicy(t, reads), Writes: mustPolicy(t, reads)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return serveEcho(t, e), iss, logs
}

// Tokens of the configured provider are accepted beside API keys; a bad one
// is a 401 that says why, one without the scope a 403.
func TestTokens_Authenticate(t *testing.T) {
	t.Parallel()
	s, iss, _ := tokenServer(t, "100/1h")
	expired := iss.Valid()
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	otherAud := iss.Valid()
	otherAud["aud"] = "another-api"
	noScope := iss.Valid()
	noScope["scope"] = "openid profile"
	admin := iss.Valid()
	admin["scope"] = "openid admin"

	tests := []struct {
		name   string
		auth   string
		status int
		detail string // in the problem's detail
	}{
		{"valid token", iss.Token(t, iss.Valid()), http.StatusOK, ""},
		{"admin includes users:read", iss.Token(t, admin), http.StatusOK, ""},
		{"API key beside tokens", "good", http.StatusOK, ""},
		{"expired", iss.Token(t, expired), http.StatusUnauthorized, "expired"},
		{"wrong audience", iss.Token(t, otherAud), http.StatusUnauthorized, "audience"},
		{"alg none", iss.Unsigned(t, iss.Valid()), http.StatusUnauthorized, "none"},
		{"HMAC with the public key", iss.HMACWithPublicKey(t, iss.Valid()), http.StatusUnauthorized, "HS256"},
		{"missing scope", iss.Token(t, noScope), http.StatusForbidden, `the token of "user-1" has none of this API's scopes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do("GET", "/users/1", nil, "Authorization", "Bearer "+tt.auth)
			if r.status != tt.status {
				t.Fatalf("GET /users/1 = %d %s, want %d", r.status, r.body, tt.status)
			}
			if tt.status == http.StatusOK {
				return
			}
			if p := r.problem(t); !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q, want it to say %q", p.Detail, tt.detail)
			}
			want := `error="invalid_token"`
			if tt.status == http.StatusForbidden {
				want = `error="insufficient_scope", scope="users:read"`
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, want) {
				t.Errorf("WWW-Authenticate = %q, want %s", got, want)
			}
		})
	}
}

// The rate limiter and the access log know a token's caller by its
// subject: two tokens of one subject spend one budget, another subject has
// its own, and the log names the subject, never the token.
func TestTokens_CallerIsTheSubject(t *testing.T) {
	t.Parallel()
	s, iss, logs := tokenServer(t, "3/1h")
	first := iss.Token(t, iss.Valid())
	c := iss.Valid()
	c["iat"] = time.Now().Add(-time.Second).Unix() // another token, same subject
	second := iss.Token(t, c)
	c["sub"] = "user-2"
	other := iss.Token(t, c)

	for i, tok := range []string{first, second, first} {
		if r := s.do("GET", "/users/1", nil, "Authorization", "Bearer "+tok); r.status != http.StatusOK {
			t.Fatalf("request %d of user-1 = %d %s", i+1, r.status, r.body)
		}
	}
	if r := s.do("GET", "/users/1", nil, "Authorization", "Bearer "+second); r.status != http.StatusTooManyRequests {
		t.Errorf("user-1's fourth read of 3/1h with its second token = %d, want 429", r.status)
	}
	r := s.do("GET", "/users/1", nil, "Authorization", "Bearer "+other)
	if r.status != http.StatusOK || r.header.Get("RateLimit") != `"reads";r=2;t=1200` {
		t.Errorf("user-2's first read = %d, RateLimit %q; want 200 and a budget of its own", r.status, r.header.Get("RateLimit"))
	}
	log := logs.String()
	if !strings.Contains(log, `"caller":"sub:user-1"`) || !strings.Contains(log, `"caller":"sub:user-2"`) {
		t.Errorf("access log does not name the subjects:\n%s", log)
	}
	for _, tok := range []string{first, second, other} {
		if strings.Contains(log, tok) || strings.Contains(log, strings.Split(tok, ".")[2]) {
			t.Fatalf("access log holds a token:\n%s", log)
		}
	}
}
