package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// createQueryFile holds the statement POST /users runs (sqlc's
// UserCreateRecorded): the user, its event and its audit entry in one
// round trip. The bench runs from the repository's root.
const createQueryFile = "store/queries/users.sql"

// ownStatementValues are what pgbench sends for each of that statement's
// parameters: the row create.pgbench inserts, and an event and audit entry
// of about the service's size. pgbench takes any colon followed by a name
// or a number for one of its variables: the values hold no colon.
var ownStatementValues = map[string]string{
	"name":              `'Load ' || :n`,
	"email":             `'pgbench-' || :n || '@example.com'`,
	"email_key":         `'pgbench-' || :n || '@example.com'`,
	"only_unsubscribed": `false`,
	"data":              `jsonb_build_object('name', 'Load', 'email', 'pgbench@example.com', 'state', 'active', 'version', 1)`,
	"actor":             `'key.uak_pgbench'`,
	"request_id":        `'pgbench'`,
	"audit_after":       `jsonb_build_object('name', 'Load', 'email', 'pgbench@example.com', 'state', 'active')`,
}

var sqlcParam = regexp.MustCompile(`@([a-z_]+)`)

// ownStatementScript is a pgbench script running the service's own create
// statement, read from the query file, so that it follows the query.
func ownStatementScript(queryFile string) ([]byte, error) {
	src, err := os.ReadFile(queryFile)
	if err != nil {
		return nil, fmt.Errorf("the create statement: %w (run from the repository's root)", err)
	}
	_, query, ok := strings.Cut(string(src), "-- name: UserCreateRecorded :one\n")
	if !ok {
		return nil, fmt.Errorf("%s has no UserCreateRecorded", queryFile)
	}
	query, _, _ = strings.Cut(query, "-- name:")
	var lines []string
	for line := range strings.Lines(query) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "--") {
			lines = append(lines, line)
		}
	}
	var missing []string
	stmt := sqlcParam.ReplaceAllStringFunc(strings.Join(lines, " "), func(p string) string {
		v, ok := ownStatementValues[p[1:]]
		if !ok {
			missing = append(missing, p)
		}
		return v
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: UserCreateRecorded takes %v, which the bench has no value for", queryFile, missing)
	}
	// pgbench reads a statement up to its semicolon, one per line.
	return []byte("\\set n random(1, 9000000000000000000)\n" + stmt + "\n"), nil
}
