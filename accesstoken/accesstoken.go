// Package accesstoken verifies the access tokens (JWTs) of an identity
// provider, so that a browser app can call the API with its user's token
// instead of an API key it could not keep secret.
//
// The provider's signing keys (its JWKS) are held in a jwx jwk.Cache, which
// refreshes them in the background. A token signed with a key the cache does
// not know yet (the provider rotated its keys) makes it fetch the JWKS at
// once, but at most once per RefreshEvery: tokens with made-up key ids
// cannot turn into one fetch each.
package accesstoken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Leeway is the clock skew allowed on exp and nbf.
const Leeway = 30 * time.Second

// DefaultRefreshEvery is Config.RefreshEvery when zero.
const DefaultRefreshEvery = 10 * time.Second

// Algorithms are the signature algorithms accepted: asymmetric ones only.
// "none" and the HMAC algorithms are never accepted: an HMAC "signature"
// made with the provider's public key as the secret would otherwise pass.
var Algorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Config names the identity provider.
type Config struct {
	// Issuer is the provider's issuer identifier; tokens must carry it as
	// iss.
	Issuer string
	// Audience must be one of a token's aud values.
	Audience string
	// JWKSURL is where the provider publishes its keys; when empty it is
	// read from the issuer's /.well-known/openid-configuration.
	JWKSURL string
	// ScopeClaim is the claim holding the token's scopes: a space-separated
	// string (as "scope" is) or a list of strings. Default "scope".
	ScopeClaim string
	// RefreshEvery bounds how often an unknown key id fetches the JWKS
	// (DefaultRefreshEvery when zero).
	RefreshEvery time.Duration
	// HTTPClient fetches discovery and keys (a client with a 10 s timeout
	// when nil).
	HTTPClient *http.Client
}

// Token is what a verified token says about its bearer.
type Token struct {
	Subject string
	// Scopes are the token's scopes, as the provider wrote them.
	Scopes []string
}

// Error is why a token is refused. Its text is meant for the token's
// bearer, who holds the token anyway: it says what is wrong, never a key.
type Error struct{ reason string }

func (e *Error) Error() string { return "the bearer token is not valid: " + e.reason }

// ErrUnavailable is returned when the provider's keys cannot be had, which
// is not the token's fault.
var ErrUnavailable = errors.New("accesstoken: the identity provider's keys are unavailable")

// Verifier verifies tokens of one provider.
type Verifier struct {
	cfg     Config
	jwksURL string
	cache   *jwk.Cache
	algs    map[string]jwa.SignatureAlgorithm

	mu          sync.Mutex // held while a refresh for an unknown key id runs
	lastRefresh time.Time
}

// New finds the provider's JWKS (through discovery unless cfg.JWKSURL is
// set), fetches it, and keeps it fresh until ctx ends or Close is called.
// It fails when the provider cannot be reached: a service that starts
// without its keys would refuse every token it is sent.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("accesstoken: an issuer and an audience are required")
	}
	if cfg.ScopeClaim == "" {
		cfg.ScopeClaim = "scope"
	}
	if cfg.RefreshEvery <= 0 {
		cfg.RefreshEvery = DefaultRefreshEvery
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	v := &Verifier{cfg: cfg, jwksURL: cfg.JWKSURL, algs: map[string]jwa.SignatureAlgorithm{}}
	for _, name := range Algorithms {
		alg, ok := jwa.LookupSignatureAlgorithm(name)
		if !ok {
			return nil, fmt.Errorf("accesstoken: unknown algorithm %s", name)
		}
		v.algs[name] = alg
	}
	if v.jwksURL == "" {
		u, err := discover(ctx, cfg.HTTPClient, cfg.Issuer)
		if err != nil {
			return nil, err
		}
		v.jwksURL = u
	}
	cache, err := jwk.NewCache(context.WithoutCancel(ctx), httprc.NewClient(httprc.WithHTTPClient(cfg.HTTPClient), httprc.WithWorkers(1)))
	if err != nil {
		return nil, fmt.Errorf("accesstoken: %w", err)
	}
	v.cache = cache
	if err := cache.Register(ctx, v.jwksURL, jwk.WithMinInterval(5*time.Minute), jwk.WithMaxInterval(time.Hour)); err != nil {
		v.Close()
		return nil, fmt.Errorf("accesstoken: fetch the keys at %s: %w", v.jwksURL, err)
	}
	return v, nil
}

// Close stops the background refresh.
func (v *Verifier) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = v.cache.Shutdown(ctx)
}

// JWKSURL is where the keys come from.
func (v *Verifier) JWKSURL() string { return v.jwksURL }

// Looks reports whether s has the shape of a JWT (three base64url parts),
// so that a caller can tell tokens from other credentials without
// verifying anything.
func Looks(s string) bool {
	return strings.Count(s, ".") == 2 && !strings.ContainsAny(s, " \t+/=")
}

// Verify checks raw's signature, issuer, audience and times, and returns
// its subject and scopes. A refused token is an *Error; ErrUnavailable
// when the keys cannot be had.
func (v *Verifier) Verify(ctx context.Context, raw string) (Token, error) {
	var keysErr error
	tok, err := jwt.Parse([]byte(raw),
		jwt.WithKeyProvider(jws.KeyProviderFunc(func(ctx context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
			keysErr = v.keyFor(ctx, sink, sig)
			return keysErr
		})),
		jwt.WithContext(ctx),
		jwt.WithValidate(true),
		jwt.WithIssuer(v.cfg.Issuer),
		jwt.WithAudience(v.cfg.Audience),
		jwt.WithAcceptableSkew(Leeway),
		jwt.WithRequiredClaim("exp"),
		jwt.WithRequiredClaim("sub"),
	)
	if errors.Is(keysErr, ErrUnavailable) {
		return Token{}, keysErr
	}
	var e *Error
	if errors.As(keysErr, &e) {
		return Token{}, e
	}
	if err != nil {
		return Token{}, &Error{reason: refusal(err)}
	}
	sub, _ := tok.Subject()
	scopes, err := v.scopes(tok)
	if err != nil {
		return Token{}, err
	}
	return Token{Subject: sub, Scopes: scopes}, nil
}

// keyFor hands jwx the provider's key for sig, after checking that its
// algorithm is one of Algorithms; jwx then refuses a key of another type
// than the algorithm needs.
func (v *Verifier) keyFor(ctx context.Context, sink jws.KeySink, sig *jws.Signature) error {
	h := sig.ProtectedHeaders()
	name := ""
	if a, ok := h.Algorithm(); ok {
		name = a.String()
	}
	alg, ok := v.algs[name]
	if !ok {
		return &Error{reason: fmt.Sprintf("the algorithm %q is not accepted; accepted are %s", name, strings.Join(Algorithms, ", "))}
	}
	kid, ok := h.KeyID()
	if !ok || kid == "" {
		return &Error{reason: "its header names no key (kid)"}
	}
	key, err := v.lookup(ctx, kid)
	if err != nil {
		return err
	}
	if ka, ok := key.Algorithm(); ok && ka.String() != name {
		return &Error{reason: fmt.Sprintf("the key %q is for %s, not %s", kid, ka, name)}
	}
	sink.Key(alg, key)
	return nil
}

// lookup finds the key kid, fetching the JWKS anew when kid is unknown
// and the last such fetch is more than RefreshEvery ago. Concurrent
// lookups of unknown ids wait for one fetch and share it.
func (v *Verifier) lookup(ctx context.Context, kid string) (jwk.Key, error) {
	set, err := v.cache.Lookup(ctx, v.jwksURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if key, ok := set.LookupKeyID(kid); ok {
		return key, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if time.Since(v.lastRefresh) >= v.cfg.RefreshEvery {
		v.lastRefresh = time.Now()
		if set, err = v.cache.Refresh(ctx, v.jwksURL); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	} else if set, err = v.cache.Lookup(ctx, v.jwksURL); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if key, ok := set.LookupKeyID(kid); ok {
		return key, nil
	}
	return nil, &Error{reason: fmt.Sprintf("the identity provider has no key %q", kid)}
}

// scopes reads the scope claim: a space-separated string or a list.
func (v *Verifier) scopes(tok jwt.Token) ([]string, error) {
	if !slices.Contains(tok.Keys(), v.cfg.ScopeClaim) {
		return nil, nil
	}
	var raw any
	if err := tok.Get(v.cfg.ScopeClaim, &raw); err != nil {
		return nil, &Error{reason: fmt.Sprintf("its %s claim cannot be read", v.cfg.ScopeClaim)}
	}
	switch s := raw.(type) {
	case string:
		return strings.Fields(s), nil
	case []any:
		scopes := make([]string, 0, len(s))
		for _, x := range s {
			str, ok := x.(string)
			if !ok {
				return nil, &Error{reason: fmt.Sprintf("its %s claim holds a list of something other than strings", v.cfg.ScopeClaim)}
			}
			scopes = append(scopes, str)
		}
		return scopes, nil
	case []string:
		return s, nil
	}
	return nil, &Error{reason: fmt.Sprintf("its %s claim is neither a string nor a list of strings", v.cfg.ScopeClaim)}
}

// refusal says, in words for the bearer, why jwx refused a token.
func refusal(err error) string {
	switch {
	case errors.Is(err, jwt.TokenExpiredError()):
		return "it has expired"
	case errors.Is(err, jwt.TokenNotYetValidError()):
		return "it is not valid yet (nbf)"
	case errors.Is(err, jwt.InvalidIssuerError()):
		return "it was issued by another issuer"
	case errors.Is(err, jwt.InvalidAudienceError()):
		return "it is meant for another audience"
	case errors.Is(err, jwt.MissingRequiredClaimError()):
		return "it lacks a required claim (exp and sub are required)"
	case errors.Is(err, jwt.InvalidIssuedAtError()):
		return "it was issued in the future (iat)"
	}
	return "its signature or format is not valid"
}

// discover reads the JWKS URL from the issuer's OpenID configuration, which
// must name the same issuer.
func discover(ctx context.Context, client *http.Client, issuer string) (string, error) {
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("accesstoken: discovery: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("accesstoken: discovery at %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("accesstoken: discovery at %s answered %s", u, resp.Status)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&doc); err != nil {
		return "", fmt.Errorf("accesstoken: discovery at %s: %w", u, err)
	}
	if doc.Issuer != issuer {
		return "", fmt.Errorf("accesstoken: discovery at %s names the issuer %q, not %q", u, doc.Issuer, issuer)
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("accesstoken: discovery at %s names no jwks_uri", u)
	}
	return doc.JWKSURI, nil
}
