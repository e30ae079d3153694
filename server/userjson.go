package server

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"userapi/store"
)

// userResponse writes a user as JSON without reflection. A single-user read
// is the hottest path of the service, and encoding/json was a fifth of its
// cost; lists and batches repeat it a hundred times over.
// TestAppendUserMatchesEncodingJSON keeps the two encodings equal, and every
// HTTP test checks the answers against openapi.yaml.
type userResponse struct {
	enc *encodedUser
}

func (r userResponse) VisitGetUserResponse(w http.ResponseWriter) error {
	h := w.Header()
	h["Etag"] = []string{r.enc.etag}
	h["Content-Type"] = []string{"application/json"}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(r.enc.body)
	return err
}

// encodedUsers keeps the answer to GET /users/{id} for the users read
// lately, each with the user it was made from, so that a hot user is
// encoded once per change rather than once per read. The bytes are
// appendUser's, so a field it writes is in them too.
type encodedUsers struct {
	byID  sync.Map // user id -> *encodedUser
	count atomic.Int64
}

// maxEncoded bounds the users remembered; past it all are forgotten, and
// the hot ones come back on their next read.
const maxEncoded = 1 << 14

type encodedUser struct {
	user store.User
	body []byte // the JSON and its newline
	etag string
}

// of returns u's answer, made now unless u is the user it was made from.
func (e *encodedUsers) of(u store.User) *encodedUser {
	if v, ok := e.byID.Load(u.ID); ok {
		if enc := v.(*encodedUser); sameUser(enc.user, u) {
			return enc
		}
	}
	enc := &encodedUser{user: u, body: append(appendUser(nil, u), '\n'), etag: etag(u)}
	if _, replaced := e.byID.Swap(u.ID, enc); !replaced && e.count.Add(1) > maxEncoded {
		e.byID.Clear()
		e.count.Store(0)
	}
	return enc
}

// sameUser reports whether a and b hold the same values; DeletedAt is
// compared by the time it points to, which each read allocates anew.
func sameUser(a, b store.User) bool {
	da, db := a.DeletedAt, b.DeletedAt
	a.DeletedAt, b.DeletedAt = nil, nil
	return a == b && (da == nil) == (db == nil) && (da == nil || da.Equal(*db))
}

// pageResponse writes a page of users (GET /users) the same way.
type pageResponse struct {
	users      []store.User
	nextCursor *string
	total      *store.UserTotal
}

func (r pageResponse) VisitListUsersResponse(w http.ResponseWriter) error {
	return writeJSON(w, func(b []byte) []byte {
		b = append(b, `{"items":`...)
		b = appendUsers(b, r.users)
		b = append(b, `,"next_cursor":`...)
		if r.nextCursor == nil {
			b = append(b, "null"...)
		} else {
			b = appendString(b, *r.nextCursor)
		}
		if r.total != nil {
			b = append(b, `,"total":`...)
			b = strconv.AppendInt(b, r.total.N, 10)
			b = append(b, `,"total_is_estimate":`...)
			b = strconv.AppendBool(b, r.total.Estimate)
		}
		return append(b, '}')
	})
}

// batchResponse writes the answer of POST /users/batch-get.
type batchResponse struct {
	users   []store.User
	missing []int64
}

func (r batchResponse) VisitBatchGetUsersResponse(w http.ResponseWriter) error {
	return writeJSON(w, func(b []byte) []byte {
		b = append(b, `{"items":`...)
		b = appendUsers(b, r.users)
		b = append(b, `,"missing":[`...)
		for i, id := range r.missing {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, id, 10)
		}
		return append(b, "]}"...)
	})
}

func appendUsers(b []byte, users []store.User) []byte {
	b = append(b, '[')
	for i, u := range users {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendUser(b, u)
	}
	return append(b, ']')
}

// writeJSON writes a 200 JSON answer built by fill in a pooled buffer.
func writeJSON(w http.ResponseWriter, fill func([]byte) []byte) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	*bp = append(fill((*bp)[:0]), '\n')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(*bp)
	return err
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendUser appends the JSON of the API's User, fields in the order
// encoding/json writes them.
func appendUser(b []byte, u store.User) []byte {
	b = append(b, `{"created_at":`...)
	b = appendTime(b, u.CreatedAt)
	if u.DeletedAt != nil {
		b = append(b, `,"deleted_at":`...)
		b = appendTime(b, *u.DeletedAt)
	}
	b = append(b, `,"email":`...)
	b = appendString(b, u.Email)
	b = append(b, `,"etag":"\"`...)
	b = strconv.AppendInt(b, u.Version, 10)
	b = append(b, `\""`...)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, u.ID, 10)
	b = append(b, `,"name":`...)
	b = appendString(b, u.Name)
	b = append(b, `,"state":`...)
	b = appendString(b, string(u.State))
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, u.UpdatedAt)
	return append(b, '}')
}

// appendTime appends t as encoding/json does (RFC 3339, the fraction's
// trailing zeros dropped). Times in UTC, which the store returns, are
// written digit by digit: the general formatter was most of a list's
// encoding.
func appendTime(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if t.Location() != time.UTC || year < 0 || year > 9999 {
		b = append(b, '"')
		b = t.AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	}
	hour, minute, second := t.Clock()
	b = append(b, '"')
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, second, 2)
	if ns := t.Nanosecond(); ns != 0 {
		digits := 9
		for ns%10 == 0 {
			ns /= 10
			digits--
		}
		b = append(b, '.')
		b = appendDigits(b, ns, digits)
	}
	return append(b, 'Z', '"')
}

// appendDigits appends n, 0 <= n < 10^width, in exactly width digits.
func appendDigits(b []byte, n, width int) []byte {
	b = append(b, "000000000"[:width]...)
	for i := len(b) - 1; n > 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return b
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string, escaping as encoding/json does:
// quotes, backslashes, control characters, <, > and &, U+2028 and U+2029,
// and invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
