package server

import (
	"math"
	"testing"
)

// A cursor decodes to the id it was made from.
func FuzzCursorRoundTrip(f *testing.F) {
	for _, id := range []int64{1, 2, 99, 1 << 31, math.MaxInt64} {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id int64) {
		if id < 1 {
			return // ids start at 1, and no page ends before one
		}
		c := encodeCursor(id)
		if got, ok := decodeCursor(c); !ok || got != id {
			t.Errorf("decodeCursor(encodeCursor(%d) = %q) = %d, %v, want %d, true", id, c, got, ok, id)
		}
	})
}

// Any string either decodes to a valid id, which re-encodes to a cursor
// that decodes the same, or is rejected; none panics.
func FuzzCursorDecode(f *testing.F) {
	for _, s := range []string{"", "YWZ0ZXI6MQ", "YWZ0ZXI6MA", "YWZ0ZXI6LTE", "YWZ0ZXI6", "=", "YWZ0ZXI6MQ==", "%%%", "\x00", "YWZ0ZXI6OTIyMzM3MjAzNjg1NDc3NTgwOA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := decodeCursor(s)
		if !ok {
			if id != 0 {
				t.Errorf("decodeCursor(%q) = %d, false, want 0 when rejected", s, id)
			}
			return
		}
		if id < 1 {
			t.Errorf("decodeCursor(%q) = %d, true, want an id of at least 1", s, id)
		}
		if again, ok := decodeCursor(encodeCursor(id)); !ok || again != id {
			t.Errorf("decodeCursor(encodeCursor(%d)) = %d, %v, want %d, true", id, again, ok, id)
		}
	})
}
