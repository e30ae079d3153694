package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"userapi/auth"
	"userapi/store/storetest"
)

// Key changes made through the command line are in the audit log with the
// actor cli, and the log holds neither the keys nor their hashes.
func TestKeys_Audited(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": "off"}
	key := newKey(t, vars, "--name", "billing", "--scopes", "users:read")
	prefix, _ := auth.PrefixOf(key)
	successor := rollKey(t, vars, prefix, "--expire-old", "1h")
	next, _ := auth.PrefixOf(successor)
	if _, err := keysCmd(t, vars, "revoke", next); err != nil {
		t.Fatal(err)
	}

	pool := storetest.Pool(t, vars["DATABASE_URL"], 1)
	rows, err := pool.Query(context.Background(), `
		SELECT actor, action, target, concat(before::text, ' ', after::text) FROM audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got, diffs []string
	for rows.Next() {
		var actor, action, target, diff string
		if err := rows.Scan(&actor, &action, &target, &diff); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %s", actor, action, target))
		diffs = append(diffs, diff)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"cli key.created key:" + prefix, "cli key.rolled key:" + prefix, "cli key.revoked key:" + next}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log after keys create, roll and revoke =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(diffs[0], `"name": "billing"`) || !strings.Contains(diffs[1], `"successor": "`+next+`"`) {
		t.Errorf("diffs = %q, want the new key's name and the roll's successor", diffs)
	}
	var hashes []string
	if rows, err = pool.Query(context.Background(), "SELECT encode(hash, 'hex') FROM api_keys"); err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	for _, secret := range append(hashes, key, successor, strings.TrimPrefix(key, prefix), strings.TrimPrefix(successor, next)) {
		for _, d := range diffs {
			if strings.Contains(d, secret) {
				t.Errorf("the audit log holds a key or its hash: %s", d)
			}
		}
	}
}
