package main

import (
	"net/http"
	"strings"
	"testing"

	"userapi/accesstoken/issuertest"
	"userapi/cache/cachetest"
	"userapi/store/storetest"
)

// With USERAPI_JWT_* set, the service takes the identity provider's tokens
// beside its API keys, found through the issuer's discovery document.
func TestServe_AccessTokens(t *testing.T) {
	t.Parallel()
	iss := issuertest.New(t)
	vars := map[string]string{
		"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": cachetest.URL(), "USERAPI_CACHE_PREFIX": cachetest.Prefix(t),
		"USERAPI_DB_MIN_CONNS": "0", "USERAPI_DB_MAX_CONNS": "2", "USERAPI_AUTH": "on",
		"USERAPI_JWT_ISSUER": iss.URL, "USERAPI_JWT_AUDIENCE": issuertest.Audience,
	}
	key := newKey(t, vars, "--name", "reports", "--scopes", "users:read")
	base := instance(t, vars)
	if r := call(t, "GET", base+"/users", "", bearer(iss.Token(t, iss.Valid()))...); r.status != http.StatusOK {
		t.Errorf("GET /users with a token = %d %s, want 200", r.status, r.body)
	}
	if r := call(t, "GET", base+"/users", "", bearer(key)...); r.status != http.StatusOK {
		t.Errorf("GET /users with a key beside tokens = %d %s, want 200", r.status, r.body)
	}
	c := iss.Valid()
	c["aud"] = "another-api"
	if r := call(t, "GET", base+"/users", "", bearer(iss.Token(t, c))...); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "audience") {
		t.Errorf("GET /users with a token for another audience = %d %s, want 401 naming the audience", r.status, r.body)
	}
}

func TestLoadConfig_TokenSettingsGoTogether(t *testing.T) {
	t.Parallel()
	_, err := loadConfig(env(map[string]string{"USERAPI_JWT_ISSUER": "https://idp.example.com"}))
	if err == nil || !strings.Contains(err.Error(), "USERAPI_JWT_AUDIENCE") {
		t.Errorf("an issuer without an audience: loadConfig = %v, want an error naming USERAPI_JWT_AUDIENCE", err)
	}
}
