package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/rueidis"

	"userapi/auth"
	"userapi/store"
)

// keyTTL bounds how long a key's record is held. Revocation invalidates it
// everywhere at once; the TTL only matters when that invalidation is lost.
const keyTTL = time.Minute

// Keys caches API key lookups like Users caches users, on the same Redis
// connection: every authenticated request reads its key from process memory,
// and a revocation reaches every instance through Redis's invalidation push.
// Unknown prefixes are remembered for the negative TTL, so a stream of
// requests with one made-up key costs one database lookup.
type Keys struct {
	next   auth.KeyStore
	prefix string
	read   *reader[store.APIKey]
}

var _ auth.KeyStore = (*Keys)(nil)

// NewKeys caches next's keys through client.
func NewKeys(client *Client, next auth.KeyStore) *Keys {
	return &Keys{next: next, prefix: client.opts.Prefix, read: newReader(client, keyTTL, encodeKey, decodeKey)}
}

// KeyName is the Redis key holding the record of the API key with this
// prefix, for deployments whose key prefix is cachePrefix.
func KeyName(cachePrefix, prefix string) string {
	return cachePrefix + "apikey:" + prefix
}

// Stats returns where Get's answers came from since the cache was made.
func (k *Keys) Stats() Stats { return k.read.stats() }

// Get returns the key with this prefix from memory, Redis or the store.
// Returns store.ErrNotFound if there is none.
func (k *Keys) Get(ctx context.Context, prefix string) (store.APIKey, error) {
	return k.read.get(ctx, KeyName(k.prefix, prefix), func(ctx context.Context) (store.APIKey, error) { return k.next.Get(ctx, prefix) })
}

func encodeKey(k store.APIKey) (string, error) {
	b, err := json.Marshal(k)
	return string(b), err
}

func decodeKey(s string) (store.APIKey, error) {
	var k store.APIKey
	if err := json.Unmarshal([]byte(s), &k); err != nil {
		return store.APIKey{}, fmt.Errorf("cache: decode API key: %w", err)
	}
	return k, nil
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
