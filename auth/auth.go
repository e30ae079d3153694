// Package auth knows API keys: how they look, how a presented key is
// checked, and what each scope allows.
//
// A key is "uak_" + 8 characters of public id + "_" + 43 characters of
// secret (32 random bytes). The public part, "uak_" and the id, is the key's
// prefix: it names the key in lists, logs and revocation. Only a SHA-256
// hash of the whole key is stored; 256 random bits need no slow hash.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"userapi/ratelimit"
	"userapi/store"
)

// Scopes a key can hold. Admin allows everything.
const (
	ScopeUsersRead     = "users:read"
	ScopeUsersWrite    = "users:write"
	ScopeUsersAdmin    = "users:admin"
	ScopeJobsRead      = "jobs:read"
	ScopeWebhooksAdmin = "webhooks:admin"
	ScopeEventsRead    = "events:read"
	ScopeAuditRead     = "audit:read"
	ScopeAdmin         = "admin"
)

// Scopes lists every scope.
var Scopes = []string{ScopeUsersRead, ScopeUsersWrite, ScopeUsersAdmin, ScopeJobsRead, ScopeWebhooksAdmin, ScopeEventsRead, ScopeAuditRead, ScopeAdmin}

// ParseScopes reads a comma-separated list of scopes, such as
// "users:read,jobs:read".
func ParseScopes(s string) ([]string, error) {
	var scopes []string
	for _, sc := range strings.Split(s, ",") {
		sc = strings.TrimSpace(sc)
		if !slices.Contains(Scopes, sc) {
			return nil, fmt.Errorf("unknown scope %q: the scopes are %s", sc, strings.Join(Scopes, ", "))
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	return scopes, nil
}

// Allows reports whether a key holding scopes may do what needs.
func Allows(scopes []string, needs string) bool {
	return slices.Contains(scopes, needs) || slices.Contains(scopes, ScopeAdmin)
}

const (
	keyStart  = "uak_"
	idLen     = 8
	secretLen = 43 // 32 bytes, unpadded base64url
	prefixLen = len(keyStart) + idLen
	keyLen    = prefixLen + 1 + secretLen
)

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewKey is a key just made: the key, which is shown once, and what is
// stored of it.
type NewKey struct {
	Key    string
	Prefix string
	Hash   []byte
}

// Generate makes a new random key.
func Generate() NewKey {
	id := make([]byte, 5) // 40 bits: 8 base32 characters
	secret := make([]byte, 32)
	rand.Read(id)
	rand.Read(secret)
	prefix := keyStart + idEncoding.EncodeToString(id)
	key := prefix + "_" + base64.RawURLEncoding.EncodeToString(secret)
	return NewKey{Key: key, Prefix: prefix, Hash: Hash(key)}
}

// Hash is what is stored of a key.
func Hash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// PrefixOf returns the prefix of something shaped like a key.
func PrefixOf(key string) (string, bool) {
	if len(key) != keyLen || !strings.HasPrefix(key, keyStart) || key[prefixLen] != '_' {
		return "", false
	}
	if _, err := idEncoding.DecodeString(key[len(keyStart):prefixLen]); err != nil {
		return "", false
	}
	return key[:prefixLen], true
}

// ValidPrefix reports whether s is shaped like a key's prefix.
func ValidPrefix(s string) bool {
	_, ok := PrefixOf(s + "_" + strings.Repeat("A", secretLen))
	return ok
}

// Why a key is refused.
var (
	ErrMalformed = errors.New("the API key is malformed")
	ErrUnknown   = errors.New("the API key is not valid")
	ErrRevoked   = errors.New("the API key has been revoked")
	ErrExpired   = errors.New("the API key has expired")
)

// Key is who a checked key belongs to and what it may do.
type Key struct {
	Prefix string
	Name   string
	Scopes []string
	// Rate is the key's own budget; Off when it spends the default.
	Rate ratelimit.Policy
}

// KeyStore finds a key's stored record by prefix.
type KeyStore interface {
	Get(ctx context.Context, prefix string) (store.APIKey, error)
}

// Toucher records when a key was last used.
type Toucher interface {
	Touch(ctx context.Context, prefix string) error
}

// touchEvery bounds how often each instance records a key's use: a write
// per request would cost more than the request.
const touchEvery = time.Minute

// Checker checks presented keys.
type Checker struct {
	keys    KeyStore
	touch   Toucher
	logger  *slog.Logger
	touched sync.Map // prefix -> time.Time of the last touch
}

// NewChecker checks keys against keys (usually cached), and records their
// use with touch (usually the database) at most once a minute per key.
func NewChecker(keys KeyStore, touch Toucher, logger *slog.Logger) *Checker {
	return &Checker{keys: keys, touch: touch, logger: logger}
}

// Check returns the key's owner and scopes, or why it is refused: one of
// the errors above, or the store's (such as store.ErrUnavailable).
func (c *Checker) Check(ctx context.Context, presented string) (Key, error) {
	prefix, ok := PrefixOf(presented)
	if !ok {
		return Key{}, ErrMalformed
	}
	stored, err := c.keys.Get(ctx, prefix)
	if errors.Is(err, store.ErrNotFound) {
		return Key{}, ErrUnknown
	}
	if err != nil {
		return Key{}, err
	}
	if subtle.ConstantTimeCompare(Hash(presented), stored.Hash) != 1 {
		return Key{}, ErrUnknown
	}
	now := time.Now()
	switch {
	case !stored.RevokedAt.IsZero():
		return Key{}, ErrRevoked
	case !stored.ExpiresAt.IsZero() && !now.Before(stored.ExpiresAt):
		return Key{}, ErrExpired
	}
	c.recordUse(prefix, now)
	return Key{Prefix: prefix, Name: stored.Name, Scopes: stored.Scopes,
		Rate: ratelimit.Policy{Limit: stored.RateLimit, Period: stored.RatePeriod}}, nil
}

// Verified reports whether a key with this prefix has passed Check on this
// instance. Such prefixes are as few as the keys in use, so checking them
// again cannot be used to multiply database lookups; any other prefix may be
// made up, one lookup each.
func (c *Checker) Verified(prefix string) bool {
	_, ok := c.touched.Load(prefix)
	return ok
}

// recordUse updates last-used in the background, at most once per
// touchEvery per key and instance.
func (c *Checker) recordUse(prefix string, now time.Time) {
	if last, ok := c.touched.Load(prefix); ok && now.Sub(last.(time.Time)) < touchEvery {
		return
	}
	c.touched.Store(prefix, now)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.touch.Touch(ctx, prefix); err != nil {
			c.logger.Warn("record API key use", "key", prefix, "error", err.Error())
		}
	}()
}
