package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"userapi/store/internal/dbsqlc"
)

// Transition is a move in a user's lifecycle: from any of From to To,
// recorded as an event of type Event.
type Transition struct {
	Name  string
	From  []UserState
	To    UserState
	Event string
}

// The transitions. A transition to the state the user is in already
// changes nothing; one from another state it does not apply to is a
// *StateError.
var (
	Suspend    = Transition{Name: "suspend", From: []UserState{StateActive}, To: StateSuspended, Event: UserSuspended}
	Reactivate = Transition{Name: "reactivate", From: []UserState{StateSuspended}, To: StateActive, Event: UserReactivated}
	Delete     = Transition{Name: "delete", From: []UserState{StateActive, StateSuspended}, To: StateDeleted, Event: UserDeleted}
	Undelete   = Transition{Name: "undelete", From: []UserState{StateDeleted}, To: StateActive, Event: UserUndeleted}
)

// StateError is a change the user's state does not allow: an update of a
// suspended user, or a transition that does not apply. It is ErrConflict.
type StateError struct {
	State UserState
}

func (e *StateError) Error() string     { return fmt.Sprintf("the user is %s", e.State) }
func (e *StateError) Is(err error) bool { return err == ErrConflict }

// DeletedEmailError is ErrConflict over an email address that a deleted
// user still holds until it is purged.
type DeletedEmailError struct {
	UserID int64
	err    error
}

func (e *DeletedEmailError) Error() string {
	return fmt.Sprintf("deleted user %d holds the email address: %v", e.UserID, e.err)
}
func (e *DeletedEmailError) Unwrap() error { return e.err }

// ErrUserDeleted is ErrNotFound for a user that is deleted and not yet
// purged: it is not read, updated or deleted again.
var ErrUserDeleted error = userDeleted{}

type userDeleted struct{}

func (userDeleted) Error() string     { return "the user is deleted" }
func (userDeleted) Is(err error) bool { return err == ErrNotFound }

// Visible is ErrUserDeleted for a deleted user unless showDeleted: what
// reads that did not ask for deleted users find.
func (u User) Visible(showDeleted bool) error {
	if u.State == StateDeleted && !showDeleted {
		return ErrUserDeleted
	}
	return nil
}

// errNoChange ends a change that has nothing to do; its transaction rolls
// back having written nothing.
var errNoChange = errors.New("no change")

// Transition moves the user with this id along t under a row lock, bumps
// its version and records t's event, and returns the user as it then is.
// Returns ErrNotFound, ErrPrecondition when ifVersion (if not nil) rejects
// its version, or a *StateError when t does not apply to its state. A user
// already in t's state is returned as it is; deleting a deleted user finds
// no user (ErrUserDeleted), as reading one does.
func (s *Users) Transition(ctx context.Context, id int64, t Transition, ifVersion func(int64) bool) (_ User, err error) {
	defer wrap(&err, "Users.Transition(%d, %s)", id, t.Name)
	var after User
	err = s.change(ctx, func(_ pgx.Tx, q *dbsqlc.Queries) (UserEvent, error) {
		before, err := lockUser(ctx, q, id, ifVersion)
		switch {
		case err != nil:
			return UserEvent{}, err
		case before.State == StateDeleted && t.To == StateDeleted:
			return UserEvent{}, ErrUserDeleted
		case before.State == t.To:
			after = before
			return UserEvent{}, errNoChange
		case !slices.Contains(t.From, before.State):
			return UserEvent{}, &StateError{State: before.State}
		}
		row, err := q.UserSetState(ctx, dbsqlc.UserSetStateParams{ID: id, State: string(t.To)})
		after = fromRow(dbsqlc.UserGetRow(row))
		return UserEvent{Event: Event{Type: t.Event, OccurredAt: after.UpdatedAt}, User: after, Before: &before}, err
	})
	if errors.Is(err, errNoChange) {
		return after, nil
	}
	return after, translate(err)
}

// Purge erases the user with this id at once, whatever its state (see
// erase), and records a UserPurged event that carries no personal data.
// Returns ErrNotFound if there is none, ErrPrecondition when ifVersion (if
// not nil) rejects its version.
func (s *Users) Purge(ctx context.Context, id int64, ifVersion func(int64) bool) (err error) {
	defer wrap(&err, "Users.Purge(%d)", id)
	return translate(s.change(ctx, func(tx pgx.Tx, q *dbsqlc.Queries) (UserEvent, error) {
		before, err := lockUser(ctx, q, id, ifVersion)
		if err != nil {
			return UserEvent{}, err
		}
		if err := erase(ctx, tx, id); err != nil {
			return UserEvent{}, err
		}
		return UserEvent{Event: Event{Type: UserPurged, OccurredAt: time.Now()}, User: before, Before: &before}, nil
	}))
}

// PurgeDeletedBefore purges up to limit users deleted before the time
// given, longest deleted first, each in a transaction of its own, and
// returns how many it purged.
func (s *Users) PurgeDeletedBefore(ctx context.Context, before time.Time, limit int) (_ int, err error) {
	defer wrap(&err, "Users.PurgeDeletedBefore")
	ids, err := s.queries(ctx).UsersDeletedBefore(ctx, dbsqlc.UsersDeletedBeforeParams{Before: pgtype.Timestamptz{Time: before, Valid: true}, RowLimit: int64(limit)})
	if err != nil {
		return 0, translate(err)
	}
	n := 0
	for _, id := range ids {
		err := s.Purge(ctx, id, nil)
		switch {
		case errors.Is(err, ErrNotFound):
			// Purged meanwhile by a caller.
		case err != nil:
			return n, err
		default:
			n++
		}
	}
	return n, nil
}
