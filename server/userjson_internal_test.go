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

// appendTime writes what encoding/json writes for a time, whatever its
// fraction, zone or year.
func TestAppendTimeMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, tm := range []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 6, 7, 8, 9, 10, 120000000, time.UTC),
		time.Date(1999, 1, 1, 0, 0, 0, 1000, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 100, time.UTC),
		time.Date(2026, 6, 7, 8, 9, 10, 500, time.FixedZone("", -7*3600)),
		time.Date(2026, 6, 7, 8, 9, 10, 500, time.Local),
	} {
		want, _ := json.Marshal(tm)
		if got := appendTime(nil, tm); !bytes.Equal(got, want) {
			t.Errorf("appendTime(%s) = %s, want %s", tm, got, want)
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

// A kept answer is reused only for the very user it was made from: a
// change to any field makes a new one, equal to encoding the user again.
func TestEncodedUsersFollowChanges(t *testing.T) {
	t.Parallel()
	var e encodedUsers
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	u := store.User{ID: 7, Name: "Ada", Email: "ada@example.com", Version: 1, CreatedAt: when, UpdatedAt: when}
	first := e.of(u)
	if again := e.of(u); again != first {
		t.Error("the same user was encoded twice")
	}
	renamed := u
	renamed.Name, renamed.Version, renamed.UpdatedAt = "Ada L.", 2, when.Add(time.Second)
	for _, changed := range []store.User{renamed, {ID: 7, Name: "Ada", Email: "ada@example.com", Version: 1, CreatedAt: when, UpdatedAt: when.Add(time.Nanosecond)}} {
		got := e.of(changed)
		if want := append(appendUser(nil, changed), '\n'); !bytes.Equal(got.body, want) || got.etag != etag(changed) {
			t.Errorf("after a change: body %s etag %s; want %s etag %s", got.body, got.etag, want, etag(changed))
		}
	}
}
