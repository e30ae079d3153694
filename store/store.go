// Package store keeps users in PostgreSQL. Its repositories hide the
// generated query layer (store/internal/dbsqlc) and speak in domain types and
// sentinel errors, so callers never see pgx or SQL.
package store

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers compare with errors.Is; the HTTP layer maps each to
// one status code.
var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the change would break a uniqueness rule.
	ErrConflict = errors.New("conflict")
	// ErrPrecondition means the row changed since the version the caller named.
	ErrPrecondition = errors.New("precondition failed")
	// ErrUnavailable means the database could not be reached or did not answer in time.
	ErrUnavailable = errors.New("database unavailable")
	// ErrInvalidText means a text value cannot be stored: it is not valid
	// UTF-8, or it holds a NUL character, which PostgreSQL text cannot.
	ErrInvalidText = errors.New("invalid text")
)

// wrap adds the operation and its arguments to a non-nil error, keeping it
// comparable with errors.Is. Use it as: defer wrap(&err, "Users.Get(%d)", id).
func wrap(errp *error, format string, args ...any) {
	if *errp != nil {
		*errp = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), *errp)
	}
}
