package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"userapi/email"
	"userapi/gen"
	"userapi/store"
)

// searchParams are the parameters GET /users and GET /users/export share.
type searchParams struct {
	q                           *string
	email                       *string
	createdAfter, createdBefore *time.Time
	updatedAfter, updatedBefore *time.Time
	sort                        *gen.UserSort
	state                       *gen.UserState
	showDeleted                 *bool
}

// userQuery is the package's userQuery for this caller: seeing deleted
// users needs the users:admin scope, and listing them show_deleted=true.
func (h *Handler) userQuery(ctx context.Context, p searchParams) (store.UserQuery, error) {
	q, err := userQuery(p)
	if err != nil {
		return q, err
	}
	if q.ShowDeleted {
		if err := h.needAdmin(ctx, "show_deleted=true"); err != nil {
			return q, err
		}
	} else if q.State != nil && *q.State == store.StateDeleted {
		return q, validation(gen.FieldError{Location: "query.state", Message: "deleted users are listed only with show_deleted=true"})
	}
	return q, nil
}

// userQuery turns the parameters into the store's query. A time range whose
// end is not after its start is a 422 naming the end.
func userQuery(p searchParams) (store.UserQuery, error) {
	sort, err := specDefault(p.sort)
	if err != nil {
		return store.UserQuery{}, err
	}
	field, desc := strings.CutPrefix(string(sort), "-")
	q := store.UserQuery{
		Email:        p.email,
		CreatedAfter: p.createdAfter, CreatedBefore: p.createdBefore,
		UpdatedAfter: p.updatedAfter, UpdatedBefore: p.updatedBefore,
		Sort: store.UserSort{Field: store.UserSortField(field), Desc: desc},
	}
	if p.q != nil {
		q.Search = *p.q
	}
	if p.state != nil {
		st := store.UserState(*p.state)
		q.State = &st
	}
	q.ShowDeleted = p.showDeleted != nil && *p.showDeleted
	var bad []gen.FieldError
	if reversed(q.CreatedAfter, q.CreatedBefore) {
		bad = append(bad, gen.FieldError{Location: "query.created_before", Message: "must be later than created_after"})
	}
	if reversed(q.UpdatedAfter, q.UpdatedBefore) {
		bad = append(bad, gen.FieldError{Location: "query.updated_before", Message: "must be later than updated_after"})
	}
	if bad != nil {
		return q, validation(bad...)
	}
	return q, nil
}

func reversed(after, before *time.Time) bool {
	return after != nil && before != nil && !before.After(*after)
}

// A cursor is a position in the order of one query, bound to that query:
//
//	base64url( fingerprint[8] | check[8] | {"i": id, "k": sort key} )
//
// The fingerprint is a hash of the query's normalised parameters, so a
// cursor sent with another q, filter or sort is refused rather than read
// as a position in an order it was not made for. The check is a hash of
// fingerprint and body, so a cursor changed in any way (truncated, bits
// flipped, fingerprint edited to match another query) is refused too.
//
// Neither hash is keyed. A caller who rebuilds a cursor with the right
// hashes can start a page anywhere in its own query, which it can do with
// filters anyway: a cursor carries no authority, only a position. A key
// would add a secret that every instance must share and that rotations
// would break, for nothing it protects.
const (
	fingerprintLen = 8
	checkLen       = 8
)

type cursorBody struct {
	ID  int64  `json:"i"`
	Key string `json:"k,omitempty"`
}

// queryFingerprint hashes what selects and orders q's users; a cursor made for
// one query fits only a query with the same fingerprint.
func queryFingerprint(q store.UserQuery) []byte {
	var b strings.Builder
	field := func(s string) { b.WriteString(s); b.WriteByte(0) }
	opt := func(t *time.Time) {
		if t == nil {
			field("-")
		} else {
			field(t.UTC().Format(time.RFC3339Nano))
		}
	}
	field("v1")
	field(string(q.Sort.Field))
	if q.Sort.Desc {
		field("desc")
	} else {
		field("asc")
	}
	field(q.Search)
	if q.Email != nil {
		field("=" + email.Key(*q.Email))
	} else {
		field("-")
	}
	opt(q.CreatedAfter)
	opt(q.CreatedBefore)
	opt(q.UpdatedAfter)
	opt(q.UpdatedBefore)
	// Added only when set, so that cursors made before they existed fit.
	if q.State != nil {
		field("state=" + string(*q.State))
	}
	if q.ShowDeleted {
		field("show_deleted")
	}
	sum := sha256.Sum256([]byte(b.String()))
	return sum[:fingerprintLen]
}

func cursorCheck(fp, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte("userapi cursor\x00"))
	h.Write(fp)
	h.Write(body)
	return h.Sum(nil)[:checkLen]
}

// encodeCursor is the cursor of position p in q's order.
func encodeCursor(q store.UserQuery, p store.UserPosition) string {
	c := cursorBody{ID: p.ID}
	switch {
	case q.Sort.Field.IsTime():
		c.Key = p.Time.UTC().Format(time.RFC3339Nano)
	case q.Sort.Field != store.SortByID:
		c.Key = p.Text
	}
	body, _ := json.Marshal(c) // an int and a string cannot fail
	fp := queryFingerprint(q)
	raw := append(append(append([]byte{}, fp...), cursorCheck(fp, body)...), body...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// Why decodeCursor refuses a cursor, as the 422 says it.
const (
	cursorModified   = "is not a cursor this API returned; pass next_cursor unchanged"
	cursorOtherQuery = "belongs to a query with another q, filter or sort; send the same parameters with it, or start again without cursor"
)

// decodeCursor is the position s encodes in q's order, or the reason it
// has none.
func decodeCursor(q store.UserQuery, s string) (store.UserPosition, string) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) <= fingerprintLen+checkLen {
		if p, ok := legacyCursor(q, s); ok {
			return p, ""
		}
		return store.UserPosition{}, cursorModified
	}
	fp, check, body := raw[:fingerprintLen], raw[fingerprintLen:fingerprintLen+checkLen], raw[fingerprintLen+checkLen:]
	if !bytes.Equal(check, cursorCheck(fp, body)) {
		return store.UserPosition{}, cursorModified
	}
	if !bytes.Equal(fp, queryFingerprint(q)) {
		return store.UserPosition{}, cursorOtherQuery
	}
	var c cursorBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(&c) != nil || c.ID < 1 {
		return store.UserPosition{}, cursorModified
	}
	p := store.UserPosition{ID: c.ID}
	switch {
	case q.Sort.Field.IsTime():
		if p.Time, err = time.Parse(time.RFC3339Nano, c.Key); err != nil {
			return store.UserPosition{}, cursorModified
		}
	case q.Sort.Field != store.SortByID:
		p.Text = c.Key
	}
	return p, ""
}

// legacyCursor reads the cursors of earlier versions, "after:<id>", which
// only ever walked users in id order with no filter but email; a walk that
// spans an upgrade goes on.
func legacyCursor(q store.UserQuery, s string) (store.UserPosition, bool) {
	id, ok := decodeIDCursor(s)
	plain := q.Sort == (store.UserSort{Field: store.SortByID}) && q.Search == "" &&
		q.CreatedAfter == nil && q.CreatedBefore == nil && q.UpdatedAfter == nil && q.UpdatedBefore == nil &&
		q.State == nil && !q.ShowDeleted
	return store.UserPosition{ID: id}, ok && plain
}
