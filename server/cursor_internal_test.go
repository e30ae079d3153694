package server

import (
	"math"
	"testing"
	"time"

	"userapi/store"
)

// A cursor decodes, with its own query, to the position it was made from.
func FuzzCursorRoundTrip(f *testing.F) {
	for _, id := range []int64{1, 2, 99, 1 << 31, math.MaxInt64} {
		f.Add(id, "Ada Lovelace", uint8(1), false, int64(1767323045123456000))
	}
	f.Add(int64(7), "", uint8(0), true, int64(0))
	f.Add(int64(7), "\x00\"é", uint8(2), true, int64(-1))
	f.Fuzz(func(t *testing.T, id int64, key string, field uint8, desc bool, nanos int64) {
		if id < 1 {
			return // ids start at 1, and no page ends before one
		}
		q := store.UserQuery{Sort: store.UserSort{Field: store.UserSortFields[int(field)%len(store.UserSortFields)], Desc: desc}}
		u := store.User{ID: id, Name: key, Email: key, CreatedAt: time.Unix(0, nanos).UTC().Truncate(time.Microsecond)}
		u.UpdatedAt = u.CreatedAt
		want := q.Sort.PositionOf(u)
		c := encodeCursor(q, want)
		got, why := decodeCursor(q, c)
		if why != "" || got != want {
			t.Errorf("decodeCursor(%+v, encodeCursor(%+v) = %q) = %+v, %q, want %+v", q, want, c, got, why, want)
		}
	})
}

// Any string is either refused or decodes to a position with an id of at
// least 1 that re-encodes to a cursor decoding the same; none panics.
func FuzzCursorDecode(f *testing.F) {
	q := store.UserQuery{Sort: store.UserSort{Field: store.SortByCreatedAt}}
	good := encodeCursor(q, store.UserPosition{ID: 3, Time: time.Unix(1767323045, 0).UTC()})
	for _, s := range []string{"", good, good[:len(good)-1], "YWZ0ZXI6MQ", "=", "%%%", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, why := decodeCursor(q, s)
		if why != "" {
			return
		}
		if p.ID < 1 {
			t.Errorf("decodeCursor(%q) = %+v, want an id of at least 1", s, p)
		}
		if again, why := decodeCursor(q, encodeCursor(q, p)); why != "" || again != p {
			t.Errorf("decodeCursor(encodeCursor(%+v)) = %+v, %q, want %+v", p, again, why, p)
		}
	})
}
