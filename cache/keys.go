package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidisaside"

	"userapi/auth"
	"userapi/store"
)

// keyTTL bounds how long a key's record is held. Revocation invalidates it
// everywhere at once; the TTL only matters when that invalidation is lost.
const keyTTL = time.Minute

// Keys caches API key lookups like Users caches users, on the same Redis
// connection: every authenticated request reads its key from process memory,
// and a revocation reaches every instance through Redis's invalidation push.
type Keys struct {
	conn    *Users
	next    auth.KeyStore
	decoded sync.Map // prefix -> *decodedKey
}

type decodedKey struct {
	raw string
	key store.APIKey
}

// NewKeys caches next's keys in the Redis conn is connected to.
func NewKeys(conn *Users, next auth.KeyStore) *Keys {
	return &Keys{conn: conn, next: next}
}

// KeyName is the Redis key holding the record of the API key with this
// prefix, for deployments whose key prefix is cachePrefix.
func KeyName(cachePrefix, prefix string) string {
	return cachePrefix + "apikey:" + prefix
}

// Get returns the key with this prefix from memory, Redis or the store.
// Returns store.ErrNotFound if there is none.
func (k *Keys) Get(ctx context.Context, prefix string) (store.APIKey, error) {
	c := k.conn.available(ctx)
	if c == nil {
		return k.next.Get(ctx, prefix)
	}
	val, _, err := lookup(ctx, c, KeyName(k.conn.opts.Prefix, prefix), keyTTL, func(ctx context.Context) (string, error) {
		key, err := k.next.Get(ctx, prefix)
		if errors.Is(err, store.ErrNotFound) {
			rueidisaside.OverrideCacheTTL(ctx, k.conn.opts.NegativeTTL)
			return negative, nil
		}
		if err != nil {
			return "", err
		}
		b, err := json.Marshal(key)
		return string(b), err
	})
	var le *loadError
	if errors.As(err, &le) {
		return store.APIKey{}, le.err
	}
	if err != nil {
		if ctx.Err() != nil {
			return store.APIKey{}, ctx.Err()
		}
		k.conn.failed(err)
		return k.next.Get(ctx, prefix)
	}
	if val == negative {
		return store.APIKey{}, fmt.Errorf("cache: API key %s: %w", prefix, store.ErrNotFound)
	}
	if d, ok := k.decoded.Load(prefix); ok && d.(*decodedKey).raw == val {
		return d.(*decodedKey).key, nil
	}
	var key store.APIKey
	if err := json.Unmarshal([]byte(val), &key); err != nil {
		k.conn.invalidateKey(ctx, KeyName(k.conn.opts.Prefix, prefix))
		return k.next.Get(ctx, prefix)
	}
	// Keys are few (people make them), so this map stays small.
	k.decoded.Store(prefix, &decodedKey{raw: val, key: key})
	return key, nil
}

// Forget drops the cached record of a key on every instance: the userapi
// keys command calls it after a change. It fails when Redis cannot be
// reached, because instances may then keep the old record for up to a minute.
func Forget(ctx context.Context, redisURL, cachePrefix, prefix string) error {
	opt, err := rueidis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("parse Redis URL: %w", err)
	}
	opt.Dialer.Timeout = 2 * time.Second
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.Do(ctx, c.B().Del().Key(KeyName(cachePrefix, prefix)).Build()).Error()
}
