package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"userapi/email"
	"userapi/store/internal/dbsqlc"
)

// User is a stored user.
type User struct {
	ID    int64
	Name  string
	Email string
	// Version starts at 1 and grows by one with every change; it is the
	// user's ETag.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	State     UserState
	// DeletedAt is when the user was deleted; nil unless State is StateDeleted.
	DeletedAt *time.Time
}

// UserState is where a user is in its lifecycle.
type UserState string

// The states of a user. A deleted user is kept, hidden, with its email
// reserved, until it is purged.
const (
	StateActive    UserState = "active"
	StateSuspended UserState = "suspended"
	StateDeleted   UserState = "deleted"
)

// UserStates are the valid UserState values.
var UserStates = []UserState{StateActive, StateSuspended, StateDeleted}

// NewUser holds what a caller supplies to create a user.
type NewUser struct {
	Name  string
	Email string
}

// UserChange describes an update. Nil fields keep their value.
type UserChange struct {
	Name  *string
	Email *string
	// IfVersion, when set, must accept the stored version or the update fails
	// with ErrPrecondition. It is called with the row locked.
	IfVersion func(version int64) bool
}

// Profile is a user's derived data, recomputed in the background from the
// fields the user edits.
type Profile struct {
	// EmailNormalized is the email address trimmed and in lower case.
	EmailNormalized string
	// Score is how complete the profile is, from 0 to 100.
	Score int
	// ComputedAt is when the data was last recomputed.
	ComputedAt time.Time
}

// UserFilter selects a page of the users a query selects.
type UserFilter struct {
	UserQuery
	// After, when set, starts the page right after this position in the
	// query's order (keyset paging).
	After *UserPosition
	// Offset skips this many users instead; it is ignored when After is set.
	Offset int64
	// Limit is the page size, at least 1.
	Limit int
	// Count asks for the page's Total, and ExactCountWithin bounds an exact
	// count (DefaultExactCountWithin when zero).
	Count            UserCount
	ExactCountWithin time.Duration
}

// UserPage is one page of users, whether more follow it, and how many
// there are in all when the filter asked.
type UserPage struct {
	Users []User
	More  bool
	Total *UserTotal
}

// UserService is what the HTTP layer needs from a user repository. The
// PostgreSQL repository implements it, and so does anything that wraps one.
type UserService interface {
	// Create stores a new user. Returns ErrConflict if the email is taken.
	Create(ctx context.Context, u NewUser) (User, error)
	// Get returns the user with this id. Returns ErrNotFound if there is none.
	Get(ctx context.Context, id int64) (User, error)
	// GetMany returns the users with these ids in one round trip, in id
	// order; ids no user has are left out.
	GetMany(ctx context.Context, ids []int64) ([]User, error)
	// List returns one page of users.
	List(ctx context.Context, f UserFilter) (UserPage, error)
	// Update applies a change. Returns ErrNotFound (for a deleted user too),
	// ErrPrecondition when IfVersion rejects the stored version, ErrConflict
	// if the email is taken, or a *StateError for a suspended user.
	Update(ctx context.Context, id int64, c UserChange) (User, error)
	// Delete soft-deletes the user with this id (the Delete transition).
	// Returns ErrNotFound if there is none or it is deleted already,
	// ErrPrecondition when ifVersion (if not nil) rejects its version.
	Delete(ctx context.Context, id int64, ifVersion func(int64) bool) error
	// Transition moves the user along t, and returns it as it then is.
	// Returns ErrNotFound, ErrPrecondition, or a *StateError when t does
	// not apply to the user's state.
	Transition(ctx context.Context, id int64, t Transition, ifVersion func(int64) bool) (User, error)
	// Purge erases the user, whatever its state (see Users.Purge).
	Purge(ctx context.Context, id int64, ifVersion func(int64) bool) error
}

// DB is what a repository runs its statements on: a pool, a connection or a
// transaction.
type DB interface {
	dbsqlc.DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Event types of user changes, as webhook subscribers see them.
const (
	UserCreated     = "user.created"
	UserUpdated     = "user.updated"
	UserDeleted     = "user.deleted"
	UserSuspended   = "user.suspended"
	UserReactivated = "user.reactivated"
	UserUndeleted   = "user.undeleted"
	UserPurged      = "user.purged"
)

// UserEvent is one change to a user, as seen from inside the transaction
// that makes it, once it is in the event log.
type UserEvent struct {
	// Event is the log's record: its ID, Type (one of the User* event
	// types), OccurredAt, and the user as Data (none for UserPurged).
	Event
	// User is the row after the change; for UserPurged, the row that went.
	User User
	// Before is the row before the change; nil for UserCreated. The audit
	// log records the fields that differ from User.
	Before *User
	// Subscribers are the ids of the webhook subscriptions to Type, as the
	// change's transaction saw them when it logged the event; a hook that
	// queues deliveries need not look them up again. Nil when unknown.
	Subscribers []int64
}

// UserHook runs inside the transaction of every user change, after the row
// changed and before the commit. Whatever it writes through tx commits or
// rolls back with the change; an error rolls the change back and is returned
// to the caller.
type UserHook func(ctx context.Context, tx pgx.Tx, ev UserEvent) error

// Users is the PostgreSQL user repository.
type Users struct {
	db   DB
	q    *dbsqlc.Queries
	hook UserHook
	// hookOnlySubscribed runs hook only for changes a webhook subscribes to.
	hookOnlySubscribed bool
	committed          func()
}

var _ UserService = (*Users)(nil)

// NewUsers returns a repository that runs on db.
func NewUsers(db DB) *Users {
	return &Users{db: db, q: dbsqlc.New(db)}
}

// WithTx returns a repository whose statements run inside tx, so a caller can
// commit a user change together with other writes. It keeps the hook.
func (s *Users) WithTx(tx pgx.Tx) *Users {
	c := *s
	c.db, c.q = tx, dbsqlc.New(tx)
	return &c
}

// WithHook returns a repository that calls hook inside the transaction of
// every change it makes.
func (s *Users) WithHook(hook UserHook) *Users {
	c := *s
	c.hook, c.hookOnlySubscribed = hook, false
	return &c
}

// WithSubscriberHook returns a repository that calls hook inside the
// transaction of every change a webhook subscribes to (ev.Subscribers is not
// empty), such as one that queues deliveries. A creation nobody subscribes
// to then needs no transaction of its own (see Create).
func (s *Users) WithSubscriberHook(hook UserHook) *Users {
	c := *s
	c.hook, c.hookOnlySubscribed = hook, true
	return &c
}

// WithCommitted returns a repository that calls fn once the transaction of
// each change has ended (see AfterTx), to wake the event log's readers. It
// must be quick: the change's caller waits for it.
func (s *Users) WithCommitted(fn func()) *Users {
	c := *s
	c.committed = fn
	return &c
}

// Create stores a new user. Returns ErrConflict if another user has the same
// email, as package email compares addresses: a *DeletedEmailError when
// that user is deleted.
//
// The row, its event and its audit entry go in one statement. With no
// transaction to join and no hook to run (no hook, or a subscriber hook and
// no subscription to user.created), that statement is the whole transaction:
// one round trip, as a bare INSERT takes.
func (s *Users) Create(ctx context.Context, u NewUser) (_ User, err error) {
	defer wrap(&err, "Users.Create")
	var ev UserEvent
	err = errSubscribed
	if s.mayCreateAlone(ctx) {
		ev, err = createRecorded(ctx, s.q, u, s.hook != nil)
	}
	if errors.Is(err, errSubscribed) {
		err = s.inTx(ctx, func(tx pgx.Tx, q *dbsqlc.Queries) (err error) {
			if ev, err = createRecorded(ctx, q, u, false); err != nil {
				return err
			}
			return s.runHook(ctx, tx, ev)
		})
	}
	if err == nil && s.committed != nil {
		AfterTx(ctx, s.committed)
	}
	return ev.User, s.emailConflict(ctx, translate(err), u.Email)
}

// errSubscribed is why a creation on its own did not happen: a webhook
// subscribes to it, so the hook must run in its transaction.
var errSubscribed = errors.New("user.created has subscribers")

// mayCreateAlone reports whether a creation may be a transaction of its
// own: there is no transaction to join, and a hook, if any, runs only for
// subscribed changes.
func (s *Users) mayCreateAlone(ctx context.Context) bool {
	if _, isTx := s.db.(pgx.Tx); isTx || conn(ctx, s.db) != s.db {
		return false
	}
	return s.hook == nil || s.hookOnlySubscribed
}

// createRecorded inserts u with its event and audit entry, and returns the
// event as recordChange would have made it. What the event's data and the
// audit entry hold but the row decides (the id and timestamps) the
// statement fills in; the rest is the prospective user's.
// With onlyUnsubscribed, it writes nothing and returns errSubscribed when a
// webhook subscribes to user.created.
func createRecorded(ctx context.Context, q *dbsqlc.Queries, u NewUser, onlyUnsubscribed bool) (UserEvent, error) {
	prospect := User{Name: u.Name, Email: u.Email, State: StateActive}
	data, err := eventJSON(prospect)
	if err != nil {
		return UserEvent{}, err
	}
	after, err := jsonOrNil(userDiff(UserEvent{User: prospect}).after)
	if err != nil {
		return UserEvent{}, err
	}
	who := actorOf(ctx)
	row, err := q.UserCreateRecorded(ctx, dbsqlc.UserCreateRecordedParams{
		Name: u.Name, Email: u.Email, EmailKey: emailKey(u.Email), OnlyUnsubscribed: onlyUnsubscribed,
		Data: data, Actor: who.actor, RequestID: who.requestID, AuditAfter: after,
	})
	if onlyUnsubscribed && errors.Is(err, pgx.ErrNoRows) {
		return UserEvent{}, errSubscribed
	}
	if err != nil {
		return UserEvent{}, err
	}
	created := fromRow(dbsqlc.UserGetRow{
		ID: row.ID, Name: row.Name, Email: row.Email, Version: row.Version, CreatedAt: row.CreatedAt,
		UpdatedAt: row.UpdatedAt, State: row.State, DeletedAt: row.DeletedAt,
	})
	ev := UserEvent{Event: Event{Type: UserCreated, OccurredAt: created.CreatedAt, UserID: created.ID}, User: created}
	if ev.Data, err = eventJSON(created); err != nil {
		return UserEvent{}, err
	}
	return ev, ev.recorded(row.EventID, row.Subscribers)
}

// Get returns the user with this id, whatever its state. Returns
// ErrNotFound if there is none.
func (s *Users) Get(ctx context.Context, id int64) (_ User, err error) {
	defer wrap(&err, "Users.Get(%d)", id)
	row, err := s.queries(ctx).UserGet(ctx, id)
	return fromRow(row), translate(err)
}

// GetMany returns the users with these ids, in id order, with one query.
func (s *Users) GetMany(ctx context.Context, ids []int64) (_ []User, err error) {
	defer wrap(&err, "Users.GetMany(%d ids)", len(ids))
	rows, err := s.queries(ctx).UserGetMany(ctx, ids)
	if err != nil {
		return nil, translate(err)
	}
	users := make([]User, len(rows))
	for i, row := range rows {
		users[i] = fromRow(dbsqlc.UserGetRow(row))
	}
	return users, nil
}

// List returns up to f.Limit users in f's order, whether more follow, and
// the total f.Count asks for. Returns ErrBadQuery for an unknown sort field.
func (s *Users) List(ctx context.Context, f UserFilter) (_ UserPage, err error) {
	defer wrap(&err, "Users.List")
	var page UserPage
	err = onReader(ctx, s.db, func(db DB) (err error) {
		if page, err = list(ctx, db, f); err != nil {
			return err
		}
		page.Total, err = count(ctx, db, f.UserQuery, f.Count, f.ExactCountWithin)
		return err
	})
	if err != nil {
		return UserPage{}, translate(err)
	}
	return page, nil
}

// Update applies c to the user with this id under a row lock, so concurrent
// updates serialise and IfVersion sees the version it is about to replace.
// A suspended user is not updated (a *StateError), a deleted one is not
// found (ErrUserDeleted).
func (s *Users) Update(ctx context.Context, id int64, c UserChange) (_ User, err error) {
	defer wrap(&err, "Users.Update(%d)", id)
	var updated User
	err = s.change(ctx, func(_ pgx.Tx, q *dbsqlc.Queries) (UserEvent, error) {
		before, err := lockUser(ctx, q, id, c.IfVersion)
		if err != nil {
			return UserEvent{}, err
		}
		switch before.State {
		case StateDeleted:
			return UserEvent{}, ErrUserDeleted
		case StateSuspended:
			return UserEvent{}, &StateError{State: before.State}
		}
		params := dbsqlc.UserUpdateParams{ID: id, Name: before.Name, Email: before.Email}
		if c.Name != nil {
			params.Name = *c.Name
		}
		if c.Email != nil {
			params.Email = *c.Email
		}
		params.EmailKey = emailKey(params.Email)
		changed := []string{}
		if params.Name != before.Name {
			changed = append(changed, "name")
		}
		if params.Email != before.Email {
			changed = append(changed, "email")
		}
		row, err := q.UserUpdate(ctx, params)
		updated = fromRow(dbsqlc.UserGetRow(row))
		return UserEvent{Event: Event{Type: UserUpdated, OccurredAt: updated.UpdatedAt, Changed: changed}, User: updated, Before: &before}, err
	})
	err = translate(err)
	if c.Email != nil {
		err = s.emailConflict(ctx, err, *c.Email)
	}
	return updated, err
}

// Delete soft-deletes the user with this id: the Delete transition.
// Returns ErrNotFound if there is none or it is deleted already,
// ErrPrecondition when ifVersion (if not nil) rejects its version.
func (s *Users) Delete(ctx context.Context, id int64, ifVersion func(int64) bool) (err error) {
	_, err = s.Transition(ctx, id, Delete, ifVersion)
	return err
}

// lockUser reads the user with this id and locks its row until the
// transaction ends, so that the version ifVersion (if not nil) accepts is
// the one the change replaces.
func lockUser(ctx context.Context, q *dbsqlc.Queries, id int64, ifVersion func(int64) bool) (User, error) {
	row, err := q.UserGetForUpdate(ctx, id)
	if err != nil {
		return User{}, err
	}
	if ifVersion != nil && !ifVersion(row.Version) {
		return User{}, ErrPrecondition
	}
	return fromRow(dbsqlc.UserGetRow(row)), nil
}

// emailConflict turns err, when it is ErrConflict over addr, into a
// *DeletedEmailError if a deleted user holds addr: that user can be
// undeleted, which a caller should hear.
func (s *Users) emailConflict(ctx context.Context, err error, addr string) error {
	if !errors.Is(err, ErrConflict) {
		return err
	}
	id, lookupErr := s.queries(ctx).UserDeletedWithEmail(ctx, emailKey(addr))
	if lookupErr != nil {
		return err
	}
	return &DeletedEmailError{UserID: id, err: err}
}

// SetProfile recomputes a user's derived profile data in one transaction:
// it locks the row, calls compute with the user as stored, and writes the
// result back. Returns ErrNotFound if there is no such user.
func (s *Users) SetProfile(ctx context.Context, id int64, compute func(User) Profile) (_ Profile, err error) {
	defer wrap(&err, "Users.SetProfile(%d)", id)
	var p Profile
	err = s.inTx(ctx, func(_ pgx.Tx, q *dbsqlc.Queries) error {
		row, err := q.UserGetForUpdate(ctx, id)
		if err != nil {
			return err
		}
		p = compute(fromRow(dbsqlc.UserGetRow(row)))
		return q.UserSetProfile(ctx, dbsqlc.UserSetProfileParams{
			ID:              id,
			EmailNormalized: pgtype.Text{String: p.EmailNormalized, Valid: true},
			ProfileScore:    pgtype.Int2{Int16: int16(p.Score), Valid: true},
		})
	})
	return p, translate(err)
}

// GetProfile returns a user's derived profile data, and whether it has been
// computed yet. Returns ErrNotFound if there is no such user.
func (s *Users) GetProfile(ctx context.Context, id int64) (_ Profile, computed bool, err error) {
	defer wrap(&err, "Users.GetProfile(%d)", id)
	row, err := s.queries(ctx).UserGetProfile(ctx, id)
	if err != nil {
		return Profile{}, false, translate(err)
	}
	if !row.ProfileComputedAt.Valid {
		return Profile{}, false, nil
	}
	return Profile{
		EmailNormalized: row.EmailNormalized.String,
		Score:           int(row.ProfileScore.Int16),
		ComputedAt:      row.ProfileComputedAt.Time.UTC(),
	}, true, nil
}

// change runs one user change in a transaction, appends its event to the
// log, records it in the audit log and hands it to the hook before the
// commit, so that the event, its audit entry and whatever the hook writes
// exist if and only if the change committed.
func (s *Users) change(ctx context.Context, fn func(tx pgx.Tx, q *dbsqlc.Queries) (UserEvent, error)) error {
	err := s.inTx(ctx, func(tx pgx.Tx, q *dbsqlc.Queries) error {
		ev, err := fn(tx, q)
		if err != nil {
			return err
		}
		if err := recordChange(ctx, q, &ev); err != nil {
			return err
		}
		return s.runHook(ctx, tx, ev)
	})
	if err == nil && s.committed != nil {
		AfterTx(ctx, s.committed)
	}
	return err
}

// runHook hands ev to the hook, if there is one and it runs for ev, in the
// change's transaction.
func (s *Users) runHook(ctx context.Context, tx pgx.Tx, ev UserEvent) error {
	if s.hook == nil || (s.hookOnlySubscribed && len(ev.Subscribers) == 0) {
		return nil
	}
	return s.hook(ctx, tx, ev)
}

// inTx runs fn in a transaction (a savepoint when s already runs in one, or
// ctx carries one) and commits when fn returns nil.
func (s *Users) inTx(ctx context.Context, fn func(tx pgx.Tx, q *dbsqlc.Queries) error) error {
	tx, err := Begin(ctx, s.db)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if err := fn(tx, s.q.WithTx(tx)); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// queries run in the context's transaction when there is one to join.
func (s *Users) queries(ctx context.Context) *dbsqlc.Queries { return queries(ctx, s.db, s.q) }

// emailKey is the column value under which an address is unique.
func emailKey(addr string) pgtype.Text {
	return pgtype.Text{String: email.Key(addr), Valid: true}
}

// fromRow reads a user row; every statement that returns users returns
// these columns, so each of their row types converts to UserGetRow.
func fromRow(r dbsqlc.UserGetRow) User {
	u := User{
		ID:        r.ID,
		Name:      r.Name,
		Email:     r.Email,
		Version:   r.Version,
		CreatedAt: r.CreatedAt.UTC(),
		UpdatedAt: r.UpdatedAt.UTC(),
		State:     UserState(r.State),
	}
	if r.DeletedAt.Valid {
		t := r.DeletedAt.Time.UTC()
		u.DeletedAt = &t
	}
	return u
}
