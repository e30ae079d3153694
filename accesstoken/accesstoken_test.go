package accesstoken_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"userapi/accesstoken"
	"userapi/accesstoken/issuertest"
)

func newVerifier(t *testing.T, iss *issuertest.Issuer, cfg accesstoken.Config) *accesstoken.Verifier {
	t.Helper()
	cfg.Issuer, cfg.Audience = iss.URL, issuertest.Audience
	v, err := accesstoken.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	iss := issuertest.New(t)
	v := newVerifier(t, iss, accesstoken.Config{})
	if got, want := v.JWKSURL(), iss.JWKSURL(); got != want {
		t.Errorf("JWKSURL() = %q, want %q (from discovery)", got, want)
	}
	_, err := accesstoken.New(context.Background(), accesstoken.Config{Issuer: iss.URL + "/other", Audience: "a"})
	if err == nil {
		t.Error("New with an issuer whose discovery fails = nil error, want one")
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	iss := issuertest.New(t)
	v := newVerifier(t, iss, accesstoken.Config{JWKSURL: iss.JWKSURL()})
	other := issuertest.New(t) // a provider we do not trust

	with := func(change func(issuertest.Claims)) issuertest.Claims {
		c := iss.Valid()
		change(c)
		return c
	}
	tests := []struct {
		name  string
		token string
		want  string // in the refusal; "" when the token passes
	}{
		{"valid RS256", iss.Token(t, iss.Valid()), ""},
		{"valid ES256", iss.Token(t, iss.Valid(), issuertest.WithEC()), ""},
		{"expired within leeway", iss.Token(t, with(func(c issuertest.Claims) { c["exp"] = time.Now().Add(-10 * time.Second).Unix() })), ""},
		{"expired", iss.Token(t, with(func(c issuertest.Claims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })), "expired"},
		{"not yet valid", iss.Token(t, with(func(c issuertest.Claims) { c["nbf"] = time.Now().Add(time.Minute).Unix() })), "not valid yet"},
		{"wrong audience", iss.Token(t, with(func(c issuertest.Claims) { c["aud"] = "another-api" })), "audience"},
		{"wrong issuer", iss.Token(t, with(func(c issuertest.Claims) { c["iss"] = other.URL })), "issuer"},
		{"no exp", iss.Token(t, with(func(c issuertest.Claims) { delete(c, "exp") })), "required claim"},
		{"no sub", iss.Token(t, with(func(c issuertest.Claims) { delete(c, "sub") })), "required claim"},
		{"alg none", iss.Unsigned(t, iss.Valid()), `algorithm "none"`},
		{"HMAC with the public key", iss.HMACWithPublicKey(t, iss.Valid()), `algorithm "HS256"`},
		{"signed by another provider's key", other.Token(t, iss.Valid()), "signature"},
		{"unknown kid", iss.Token(t, iss.Valid(), issuertest.WithKeyID("made-up")), "no key"},
		{"RS256 header on the EC key", iss.Token(t, iss.Valid(), issuertest.WithKeyID("key-2")), "key"},
		{"tampered", tamper(iss.Token(t, iss.Valid())), "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := v.Verify(context.Background(), tt.token)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Verify = %v, want it accepted", err)
				}
				if tok.Subject != "user-1" || !slices.Equal(tok.Scopes, []string{"users:read"}) {
					t.Errorf("Verify = %+v, want subject user-1 and scopes [users:read]", tok)
				}
				return
			}
			var e *accesstoken.Error
			if !errors.As(err, &e) {
				t.Fatalf("Verify = %v, want an *accesstoken.Error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Verify = %q, want it to say %q", err, tt.want)
			}
		})
	}
}

// tamper changes the token's payload, keeping its signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	parts[1] = parts[1][:len(parts[1])-2] + "AA"
	return strings.Join(parts, ".")
}

func TestScopeClaim(t *testing.T) {
	t.Parallel()
	iss := issuertest.New(t)
	list := newVerifier(t, iss, accesstoken.Config{JWKSURL: iss.JWKSURL(), ScopeClaim: "permissions"})
	c := iss.Valid()
	c["permissions"] = []string{"users:read", "users:write"}
	tok, err := list.Verify(context.Background(), iss.Token(t, c))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"users:read", "users:write"}; !slices.Equal(tok.Scopes, want) {
		t.Errorf("scopes from a list claim = %v, want %v", tok.Scopes, want)
	}
	delete(c, "permissions")
	tok, err = list.Verify(context.Background(), iss.Token(t, c))
	if err != nil || len(tok.Scopes) != 0 {
		t.Errorf("Verify without the scope claim = %+v, %v; want no scopes and no error", tok, err)
	}
	c["scope"] = "admin users:write"
	tok, err = newVerifier(t, iss, accesstoken.Config{JWKSURL: iss.JWKSURL()}).Verify(context.Background(), iss.Token(t, c))
	if want := []string{"admin", "users:write"}; err != nil || !slices.Equal(tok.Scopes, want) {
		t.Errorf("scopes from a space-separated scope = %v, %v; want %v", tok.Scopes, err, want)
	}
}

// An unknown key id fetches the JWKS once, however many tokens name it,
// until RefreshEvery has passed.
func TestUnknownKeyIDRefreshesOnce(t *testing.T) {
	t.Parallel()
	iss := issuertest.New(t)
	v := newVerifier(t, iss, accesstoken.Config{JWKSURL: iss.JWKSURL(), RefreshEvery: time.Hour})
	before := iss.JWKSFetches()
	bogus := iss.Token(t, iss.Valid(), issuertest.WithKeyID("made-up"))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := v.Verify(context.Background(), bogus); err == nil {
				t.Error("Verify of a token with an unknown kid = nil error")
			}
		})
	}
	wg.Wait()
	for range 20 {
		v.Verify(context.Background(), bogus)
	}
	if got := iss.JWKSFetches() - before; got != 1 {
		t.Errorf("JWKS fetched %d times for 40 tokens with an unknown kid, want 1", got)
	}
}

// After the provider rotates its keys, tokens signed with the new key pass
// (one fetch) and tokens signed with the retired one are refused.
func TestRotatedKeys(t *testing.T) {
	t.Parallel()
	iss := issuertest.New(t)
	v := newVerifier(t, iss, accesstoken.Config{JWKSURL: iss.JWKSURL(), RefreshEvery: time.Hour})
	old := iss.Token(t, iss.Valid())
	if _, err := v.Verify(context.Background(), old); err != nil {
		t.Fatalf("Verify before the rotation = %v", err)
	}
	before := iss.JWKSFetches()
	iss.Rotate(t)
	if _, err := v.Verify(context.Background(), iss.Token(t, iss.Valid())); err != nil {
		t.Fatalf("Verify of a token signed with the new key = %v, want it accepted", err)
	}
	if got := iss.JWKSFetches() - before; got != 1 {
		t.Errorf("JWKS fetched %d times after the rotation, want 1", got)
	}
	if _, err := v.Verify(context.Background(), old); err == nil {
		t.Error("Verify of a token signed with the retired key = nil error, want it refused")
	}
}

func TestLooks(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"eyJh.eyJz.c2ln": true,
		"eyJh.eyJz.":     true, // alg none: still a token, refused later
		"uak_abcdefgh_" + strings.Repeat("A", 43): false,
		"a.b":     false,
		"a.b.c.d": false,
	} {
		if got := accesstoken.Looks(s); got != want {
			t.Errorf("Looks(%q) = %v, want %v", s, got, want)
		}
	}
}

// When the provider cannot be reached, tokens signed with a key already
// fetched still pass, and one naming another key is not the token's
// fault: ErrUnavailable, not an *Error.
func TestProviderUnreachable(t *testing.T) {
	t.Parallel()
	iss := issuertest.New(t)
	v := newVerifier(t, iss, accesstoken.Config{JWKSURL: iss.JWKSURL()})
	known := iss.Token(t, iss.Valid())
	unknown := iss.Token(t, iss.Valid(), issuertest.WithKeyID("rotated-in"))
	iss.Close()
	if _, err := v.Verify(context.Background(), known); err != nil {
		t.Errorf("Verify with a cached key while the provider is down = %v, want it accepted", err)
	}
	if _, err := v.Verify(context.Background(), unknown); !errors.Is(err, accesstoken.ErrUnavailable) {
		t.Errorf("Verify with an unknown kid while the provider is down = %v, want ErrUnavailable", err)
	}
}
