package server

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestParseIdempotencyKey(t *testing.T) {
	tests := []struct {
		in     []string
		want   string
		wantOK bool
	}{
		{[]string{"abc"}, "abc", true},
		{[]string{`"abc"`}, "abc", true},
		{[]string{`  "abc"	`}, "abc", true},
		{[]string{`"a\"b\\c"`}, `a"b\c`, true},
		{[]string{`a"b`}, `a"b`, true}, // bare: a quote inside is just a character
		{[]string{"with space"}, "with space", true},
		{[]string{strings.Repeat("x", 255)}, strings.Repeat("x", 255), true},
		{[]string{`"` + strings.Repeat("x", 255) + `"`}, strings.Repeat("x", 255), true},
		{nil, "", false},
		{[]string{"a", "b"}, "", false},
		{[]string{""}, "", false},
		{[]string{"   "}, "", false},
		{[]string{`""`}, "", false},
		{[]string{`"`}, "", false},
		{[]string{`"abc`}, "", false},
		{[]string{`"a"b"`}, "", false},
		{[]string{`"a\b"`}, "", false},
		{[]string{`"abc\"`}, "", false},
		{[]string{"tab\there"}, "", false},
		{[]string{"nul\x00"}, "", false},
		{[]string{"caf\xc3\xa9"}, "", false},
		{[]string{strings.Repeat("x", 256)}, "", false},
		{[]string{`"` + strings.Repeat("x", 256) + `"`}, "", false},
	}
	for _, tt := range tests {
		got, ok := parseIdempotencyKey(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseIdempotencyKey(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestHandlerHeaders(t *testing.T) {
	before := http.Header{
		"X-Request-Id": {"r1"}, "Ratelimit-Limit": {"20"}, "Vary": {"Origin"},
		"Access-Control-Allow-Origin": {"https://app.example.com"}, "Deprecation": {"@1"},
	}
	after := before.Clone()
	after.Set("Content-Type", "application/json")
	after.Set("Location", "/users/1")
	after.Set("Etag", `"1"`)
	after.Set("Ratelimit-Remaining", "19") // set late, but still per request
	after.Add("Vary", "Accept")            // changed by the handler: part of the answer
	want := map[string][]string{
		"Content-Type": {"application/json"}, "Location": {"/users/1"}, "Etag": {`"1"`}, "Vary": {"Origin", "Accept"},
	}
	if got := handlerHeaders(before, after); !reflect.DeepEqual(got, want) {
		t.Errorf("handlerHeaders = %v, want %v", got, want)
	}
}

func TestFingerprint(t *testing.T) {
	a := fingerprint("POST", "/users", []byte(`{"a":1}`))
	for _, other := range [][]byte{
		fingerprint("PUT", "/users", []byte(`{"a":1}`)),
		fingerprint("POST", "/webhooks", []byte(`{"a":1}`)),
		fingerprint("POST", "/users", []byte(`{"a": 1}`)),
	} {
		if reflect.DeepEqual(a, other) {
			t.Errorf("two requests share the fingerprint %x", a)
		}
	}
	if !reflect.DeepEqual(a, fingerprint("POST", "/users", []byte(`{"a":1}`))) {
		t.Error("one request has two fingerprints")
	}
}
