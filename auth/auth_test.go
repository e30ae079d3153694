package auth_test

import (
	"strings"
	"testing"

	"userapi/auth"
)

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		k := auth.Generate()
		prefix, ok := auth.PrefixOf(k.Key)
		if !ok || prefix != k.Prefix || !strings.HasPrefix(k.Key, k.Prefix+"_") || !auth.ValidPrefix(k.Prefix) {
			t.Fatalf("Generate() = %+v; PrefixOf = %q, %v", k, prefix, ok)
		}
		if string(auth.Hash(k.Key)) != string(k.Hash) || len(k.Hash) != 32 {
			t.Fatalf("hash of %q does not match", k.Key)
		}
		if seen[k.Key] || seen[k.Prefix] {
			t.Fatalf("Generate repeated %q", k.Key)
		}
		seen[k.Key], seen[k.Prefix] = true, true
	}
}

func TestPrefixOf_RefusesWhatIsNotAKey(t *testing.T) {
	good := auth.Generate().Key
	for _, s := range []string{
		"", "uak_", good[:len(good)-1], good + "x", strings.Replace(good, "uak_", "uak-", 1),
		strings.Replace(good, "_", "-", 2), "uak_ABCDEFGH_" + strings.Repeat("x", 43), // upper case is not in the id alphabet
		"xyz_abcdefgh_" + strings.Repeat("x", 43),
	} {
		if p, ok := auth.PrefixOf(s); ok {
			t.Errorf("PrefixOf(%q) = %q, true; want false", s, p)
		}
	}
}

func TestScopes(t *testing.T) {
	got, err := auth.ParseScopes(" users:read, jobs:read ,users:read")
	if err != nil || strings.Join(got, ",") != "users:read,jobs:read" {
		t.Errorf("ParseScopes = %v, %v", got, err)
	}
	for _, bad := range []string{"", "users", "users:read,", "USERS:READ"} {
		if _, err := auth.ParseScopes(bad); err == nil {
			t.Errorf("ParseScopes(%q) accepted", bad)
		}
	}
	if !auth.Allows([]string{"admin"}, "webhooks:admin") || auth.Allows([]string{"users:read"}, "users:write") || !auth.Allows([]string{"jobs:read", "users:write"}, "users:write") {
		t.Error("Allows gets admin or a plain scope wrong")
	}
}
