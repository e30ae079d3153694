package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the settings table in docs/operations.md (make docs)")

const (
	settingsDoc   = "../../docs/operations.md"
	settingsBegin = "<!-- The table below is made from cmd/userapi/config.go by `make docs`: edit it there. -->\n"
	settingsEnd   = "<!-- End of the table made from cmd/userapi/config.go. -->\n"
)

// settingsTable is the settings as a Markdown table, one row per setting.
func settingsTable() string {
	var b strings.Builder
	b.WriteString("| Variable | Default | Meaning |\n| --- | --- | --- |\n")
	for _, s := range settings(&config{}) {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", s.name, s.def, s.help)
	}
	return b.String()
}

// The documented settings are the parsed ones, with their defaults and
// meanings: the table in docs/operations.md is made from the settings table.
func TestSettingsDoc(t *testing.T) {
	b, err := os.ReadFile(settingsDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	before, rest, ok := strings.Cut(doc, settingsBegin)
	got, after, ok2 := strings.Cut(rest, settingsEnd)
	if !ok || !ok2 {
		t.Fatalf("%s lacks the markers around the settings table:\n%s%s", settingsDoc, settingsBegin, settingsEnd)
	}
	want := settingsTable()
	if *update {
		if err := os.WriteFile(settingsDoc, []byte(before+settingsBegin+want+settingsEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	gotRows, wantRows := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(gotRows), len(wantRows)) {
		var g, w string
		if i < len(gotRows) {
			g = gotRows[i]
		}
		if i < len(wantRows) {
			w = wantRows[i]
		}
		if g != w {
			t.Fatalf("%s's settings table differs from cmd/userapi/config.go (run make docs) at row %d:\n got: %s\nwant: %s", settingsDoc, i+1, g, w)
		}
	}
}
