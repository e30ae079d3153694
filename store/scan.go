package store

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// scanUsers reads every row of a statement that selects userColumns. A
// page of users is the most rows any request reads, and pgx's general scan
// was most of its cost: when the columns come in the binary format a
// prepared statement gets, the rows are decoded here, with one string per
// row holding its text fields; any other format falls back to Scan.
// expect is how many rows the statement may return, at most.
func scanUsers(rows pgx.Rows, expect int) ([]User, error) {
	defer rows.Close()
	fast := binaryUserColumns(rows.FieldDescriptions())
	users := make([]User, 0, max(expect, 0))
	for rows.Next() {
		var u User
		var err error
		if fast {
			u, err = decodeUser(rows.RawValues())
		} else {
			u, err = scanUser(rows)
		}
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	return users, rows.Err()
}

// userColumnTypes are the types of userColumns, in their order.
var userColumnTypes = [...]uint32{pgtype.Int8OID, pgtype.TextOID, pgtype.TextOID, pgtype.Int8OID,
	pgtype.TimestamptzOID, pgtype.TimestamptzOID, pgtype.TextOID, pgtype.TimestamptzOID}

// binaryUserColumns reports whether decodeUser reads these columns: those
// of userColumns, numbers and times in the binary format. Text is the
// same in both formats.
func binaryUserColumns(fields []pgconn.FieldDescription) bool {
	if len(fields) != len(userColumnTypes) {
		return false
	}
	for i, f := range fields {
		if f.DataTypeOID != userColumnTypes[i] || (f.DataTypeOID != pgtype.TextOID && f.Format != pgx.BinaryFormatCode) {
			return false
		}
	}
	return true
}

// decodeUser decodes one row of userColumns in the binary format.
func decodeUser(v [][]byte) (User, error) {
	if len(v[0]) != 8 || len(v[3]) != 8 || v[1] == nil || v[2] == nil || v[6] == nil {
		return User{}, errBadUserRow
	}
	created, err := decodeTime(v[4])
	if err != nil {
		return User{}, err
	}
	updated, err := decodeTime(v[5])
	if err != nil {
		return User{}, err
	}
	// One allocation for the row's text, its fields slices of it.
	text := string(append(append(append(make([]byte, 0, len(v[1])+len(v[2])+len(v[6])), v[1]...), v[2]...), v[6]...))
	name, email, state := text[:len(v[1])], text[len(v[1]):len(v[1])+len(v[2])], text[len(v[1])+len(v[2]):]
	u := User{
		ID: int64(binary.BigEndian.Uint64(v[0])), Name: name, Email: email, Version: int64(binary.BigEndian.Uint64(v[3])),
		CreatedAt: created, UpdatedAt: updated, State: knownState(state),
	}
	if v[7] != nil {
		deleted, err := decodeTime(v[7])
		if err != nil {
			return User{}, err
		}
		u.DeletedAt = &deleted
	}
	return u, nil
}

var errBadUserRow = errors.New("a user row of an unexpected shape")

// postgresEpoch is where PostgreSQL counts binary timestamps from, in
// microseconds.
var postgresEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

// decodeTime decodes a binary timestamptz, in UTC; infinities are not
// times a user has.
func decodeTime(b []byte) (time.Time, error) {
	if len(b) != 8 {
		return time.Time{}, errBadUserRow
	}
	us := int64(binary.BigEndian.Uint64(b))
	if us == infinityMicros || us == -infinityMicros-1 {
		return time.Time{}, errBadUserRow
	}
	sec, frac := us/1e6, us%1e6
	if frac < 0 {
		sec, frac = sec-1, frac+1e6
	}
	return time.Unix(postgresEpoch+sec, frac*1e3).UTC(), nil
}

const infinityMicros = 1<<63 - 1

// knownState is s as one of the UserStates, so that rows share their
// strings; any other value is kept as it is.
func knownState(s string) UserState {
	for _, st := range UserStates {
		if string(st) == s {
			return st
		}
	}
	return UserState(s)
}
