package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"userapi/store"
)

// Users is a store.UserService that caches single-user reads and batch reads
// of cached users.
type Users struct {
	next   store.UserService
	client *Client
	read   *reader[store.User]
}

var _ store.UserService = (*Users)(nil)

// NewUsers caches next's users through client, for client's TTL.
func NewUsers(client *Client, next store.UserService) *Users {
	return &Users{next: next, client: client, read: newReader(client, client.opts.TTL, encodeUser, decodeUser)}
}

func (u *Users) key(id int64) string {
	return u.client.opts.Prefix + "user:" + strconv.FormatInt(id, 10)
}

// Stats returns where Get's answers came from since the cache was made.
func (u *Users) Stats() Stats { return u.read.stats() }

// Get returns the user with this id from memory, Redis or the store, in that
// order. Returns store.ErrNotFound if there is none.
func (u *Users) Get(ctx context.Context, id int64) (store.User, error) {
	return u.read.get(ctx, u.key(id), func(ctx context.Context) (store.User, error) { return u.next.Get(ctx, id) })
}

// GetMany answers from memory and Redis in one round trip, and asks the
// store once for the rest.
//
// It does not store what it loaded: doing so safely needs rueidisaside's
// per-key lock, which only single-key reads take. A plain SET here could put
// back a row a writer had just invalidated. Single reads warm the cache.
func (u *Users) GetMany(ctx context.Context, ids []int64) ([]store.User, error) {
	a := u.client.available()
	if a == nil {
		return u.next.GetMany(ctx, ids)
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = u.key(id)
	}
	vals, kinds, err := u.read.peekMany(ctx, a, keys)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return u.next.GetMany(ctx, ids)
	}
	found := make([]store.User, 0, len(ids))
	var misses []int64
	for i, kind := range kinds {
		switch kind {
		case peekFound:
			found = append(found, vals[i])
		case peekMiss:
			misses = append(misses, ids[i])
		}
	}
	if len(misses) == 0 {
		return found, nil
	}
	loaded, err := u.next.GetMany(ctx, misses)
	if err != nil {
		return nil, err
	}
	return append(found, loaded...), nil
}

// List is not cached: pages change with every write anywhere.
func (u *Users) List(ctx context.Context, f store.UserFilter) (store.UserPage, error) {
	return u.next.List(ctx, f)
}

// Create stores a user, then forgets any "no such user" remembered for its id.
// Inside a caller's transaction (store.WithTx) that waits for its end: a
// read between the delete and the commit would remember "no such user" again.
func (u *Users) Create(ctx context.Context, nu store.NewUser) (store.User, error) {
	user, err := u.next.Create(ctx, nu)
	if err == nil {
		store.AfterTx(ctx, func() { u.client.invalidate(ctx, u.key(user.ID)) })
	}
	return user, err
}

// Update changes the user in the store first, then invalidates its entry
// everywhere (after the caller's transaction, if any). It invalidates after
// failures too: a refused update may have raced with another instance's
// write whose invalidation was lost.
func (u *Users) Update(ctx context.Context, id int64, c store.UserChange) (store.User, error) {
	user, err := u.next.Update(ctx, id, c)
	store.AfterTx(ctx, func() { u.client.invalidate(ctx, u.key(id)) })
	return user, err
}

// Delete soft-deletes the user in the store, then invalidates its entry (after
// the caller's transaction, if any).
func (u *Users) Delete(ctx context.Context, id int64, ifVersion func(int64) bool) error {
	err := u.next.Delete(ctx, id, ifVersion)
	store.AfterTx(ctx, func() { u.client.invalidate(ctx, u.key(id)) })
	return err
}

// Transition moves the user in the store, then invalidates its entry, as
// Update does.
func (u *Users) Transition(ctx context.Context, id int64, t store.Transition, ifVersion func(int64) bool) (store.User, error) {
	user, err := u.next.Transition(ctx, id, t, ifVersion)
	store.AfterTx(ctx, func() { u.client.invalidate(ctx, u.key(id)) })
	return user, err
}

// Purge erases the user in the store, then invalidates its entry, as
// Update does.
func (u *Users) Purge(ctx context.Context, id int64, ifVersion func(int64) bool) error {
	err := u.next.Purge(ctx, id, ifVersion)
	store.AfterTx(ctx, func() { u.client.invalidate(ctx, u.key(id)) })
	return err
}

// userEntry is how a user is kept in Redis: JSON, never code. The
// invalidation log's replay reads its version (deleteOlderScript).
type userEntry struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// State is empty in entries written before users had one: they are
	// active (decodeUser).
	State     store.UserState `json:"state,omitempty"`
	DeletedAt *time.Time      `json:"deleted_at,omitempty"`
}

func encodeUser(u store.User) (string, error) {
	b, err := json.Marshal(userEntry(u))
	return string(b), err
}

func decodeUser(s string) (store.User, error) {
	var e userEntry
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		return store.User{}, fmt.Errorf("cache: decode user: %w", err)
	}
	if e.State == "" {
		e.State = store.StateActive
	}
	return store.User(e), nil
}
