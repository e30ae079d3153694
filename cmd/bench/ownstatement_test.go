package main

import (
	"regexp"
	"strings"
	"testing"
)

// pgbenchVariable is what pgbench replaces in a statement, string
// literals included.
var pgbenchVariable = regexp.MustCompile(`:[A-Za-z0-9_]+`)

// The script follows the service's create statement: every parameter gets
// a value, and it is one statement on one line, as pgbench reads it.
func TestOwnStatementScript(t *testing.T) {
	t.Parallel()
	script, err := ownStatementScript("../../" + createQueryFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(script), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `\set n`) {
		t.Fatalf("script is %d lines, want \\set and one statement:\n%s", len(lines), script)
	}
	stmt := lines[1]
	for _, want := range []string{"INSERT INTO users", "INSERT INTO events", "INSERT INTO audit_log", "'Load ' || :n"} {
		if !strings.Contains(stmt, want) {
			t.Errorf("statement lacks %q:\n%s", want, stmt)
		}
	}
	bare := stmt
	for _, v := range ownStatementValues {
		bare = strings.ReplaceAll(bare, v, "")
	}
	if m := sqlcParam.FindString(bare); m != "" {
		t.Errorf("statement still holds the parameter %s", m)
	}
	for _, m := range pgbenchVariable.FindAllString(strings.ReplaceAll(stmt, "::", ""), -1) {
		if m != ":n" {
			t.Errorf("statement holds %s, which pgbench would take for a variable; want :n alone", m)
		}
	}
}
