// Package issuertest runs an identity provider for tests: an HTTP server
// serving OpenID discovery and a JWKS, and signing tokens with its own RSA
// and EC keys. It counts the JWKS fetches, so tests can tell how often a
// verifier asked.
package issuertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Audience is the audience tokens are made for unless a test says otherwise.
const Audience = "userapi-test"

// Issuer is a running test identity provider.
type Issuer struct {
	URL string // the issuer identifier, which is also its base URL

	srv        *httptest.Server
	jwksserved atomic.Int64

	mu        sync.Mutex
	signing   []signer // published in the JWKS; the first signs
	generated int
}

type signer struct {
	kid string
	alg jwa.SignatureAlgorithm
	raw any // the private key; signing with it leaves the kid header to the test
	pub jwk.Key
}

// New starts an issuer with one RSA (RS256) key and one EC (ES256) key,
// stopped when the test ends.
func New(t testing.TB) *Issuer {
	t.Helper()
	iss := &Issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"issuer": iss.URL, "jwks_uri": iss.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		iss.jwksserved.Add(1)
		set := jwk.NewSet()
		iss.mu.Lock()
		for _, s := range iss.signing {
			set.AddKey(s.pub)
		}
		iss.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(set)
	})
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	iss.URL = iss.srv.URL
	iss.signing = []signer{iss.newSigner(t, jwa.RS256()), iss.newSigner(t, jwa.ES256())}
	return iss
}

func (iss *Issuer) newSigner(t testing.TB, alg jwa.SignatureAlgorithm) signer {
	t.Helper()
	var raw any
	var err error
	if alg == jwa.ES256() {
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	iss.generated++
	s := signer{kid: fmt.Sprintf("key-%d", iss.generated), alg: alg, raw: raw}
	key.Set(jwk.KeyIDKey, s.kid)
	key.Set(jwk.AlgorithmKey, alg)
	if s.pub, err = key.PublicKey(); err != nil {
		t.Fatal(err)
	}
	return s
}

// Close stops the issuer's server, as when the provider is unreachable.
func (iss *Issuer) Close() { iss.srv.Close() }

// JWKSURL is where the keys are published.
func (iss *Issuer) JWKSURL() string { return iss.URL + "/jwks" }

// JWKSFetches is how many times the JWKS has been served.
func (iss *Issuer) JWKSFetches() int64 { return iss.jwksserved.Load() }

// Rotate replaces every published key with a new RSA key, which then signs.
// It returns the new key's id.
func (iss *Issuer) Rotate(t testing.TB) string {
	t.Helper()
	iss.mu.Lock()
	defer iss.mu.Unlock()
	s := iss.newSigner(t, jwa.RS256())
	iss.signing = []signer{s}
	return s.kid
}

// Claims are a token's claims; Valid gives a good set to change.
type Claims map[string]any

// Valid returns claims that pass: this issuer, the test audience, subject
// "user-1", scope "users:read", valid for the next five minutes.
func (iss *Issuer) Valid() Claims {
	now := time.Now()
	return Claims{
		"iss": iss.URL, "aud": Audience, "sub": "user-1", "scope": "users:read",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
}

// Token signs claims with the current signing key (RS256), or with the key
// the options pick.
func (iss *Issuer) Token(t testing.TB, claims Claims, opts ...Option) string {
	t.Helper()
	o := options{}
	for _, f := range opts {
		f(&o)
	}
	iss.mu.Lock()
	s := iss.signing[0]
	if o.ec {
		s = iss.signing[1]
	}
	iss.mu.Unlock()
	kid := s.kid
	if o.kid != "" {
		kid = o.kid
	}
	return sign(t, claims, s.alg, s.raw, kid)
}

// HMACWithPublicKey signs claims with HS256, using the signing key's public
// key (as the JWKS publishes it) as the secret: the algorithm-confusion
// attack.
func (iss *Issuer) HMACWithPublicKey(t testing.TB, claims Claims) string {
	t.Helper()
	iss.mu.Lock()
	s := iss.signing[0]
	iss.mu.Unlock()
	pub, err := json.Marshal(s.pub)
	if err != nil {
		t.Fatal(err)
	}
	return sign(t, claims, jwa.HS256(), pub, s.kid)
}

// Unsigned makes a token with "alg": "none".
func (iss *Issuer) Unsigned(t testing.TB, claims Claims) string {
	t.Helper()
	iss.mu.Lock()
	kid := iss.signing[0].kid
	iss.mu.Unlock()
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": kid})
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc(header) + "." + enc(payload) + "."
}

// Option changes how Token signs.
type Option func(*options)

type options struct {
	ec  bool
	kid string
}

// WithEC signs with the EC (ES256) key.
func WithEC() Option { return func(o *options) { o.ec = true } }

// WithKeyID puts kid in the header instead of the signing key's own id.
func WithKeyID(kid string) Option { return func(o *options) { o.kid = kid } }

func build(t testing.TB, claims Claims) jwt.Token {
	t.Helper()
	tok := jwt.New()
	for k, v := range claims {
		if err := tok.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	return tok
}

func sign(t testing.TB, claims Claims, alg jwa.SignatureAlgorithm, key any, kid string) string {
	t.Helper()
	hdr := jws.NewHeaders()
	hdr.Set(jws.KeyIDKey, kid)
	b, err := jwt.Sign(build(t, claims), jwt.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
