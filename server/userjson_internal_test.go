package server

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"userapi/store"
)

func TestAppendUserMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	when := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	names := []string{
		"Ada Lovelace", "", `quote " and \ backslash`, "tab\tnewline\nreturn\r",
		"control \x01\x1f", "<script>&amp;</script>", "Zoë 山田 🙂", "line\u2028sep\u2029",
		"bad utf8 \xff\xfe end", "\x7f del",
	}
	for _, name := range names {
		deletedAt := when.Add(time.Minute)
		for _, u := range []store.User{
			{ID: 42, Name: name, Email: name + "@example.com", CreatedAt: when, UpdatedAt: when.Add(time.Second), State: store.StateActive},
			{ID: 42, Name: name, Email: name + "@example.com", CreatedAt: when, UpdatedAt: when.Add(time.Second), State: store.StateDeleted, DeletedAt: &deletedAt},
		} {
			want, err := json.Marshal(toAPIUser(u))
			if err != nil {
				t.Fatal(err)
			}
			if got := appendUser(nil, u); !bytes.Equal(got, want) {
				t.Errorf("appendUser(name %q, %s)\n got %s\nwant %s", name, u.State, got, want)
			}
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\"", "\xff", "\u2028", "<>&", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}
