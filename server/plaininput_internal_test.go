package server

import (
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// Whatever plainInput lets past the validator, the validator accepts: for
// every operation of the spec, over path values in and out of bounds,
// signs, escapes, queries and header parameters.
func TestPlainInput_AcceptsOnlyWhatTheValidatorAccepts(t *testing.T) {
	t.Parallel()
	values := []string{"1", "42", "0", "-1", "+1", "01", "9223372036854775807", "9223372036854775808",
		"99999999999999999999", "1.5", "1e3", "%31", "abc", ""}
	suffixes := []string{"", "?show_deleted=true", "?show_deleted=maybe", "?limit=abc", "?nonsense=1"}
	fast, slow := 0, 0
	for _, op := range mustOperations(t) {
		plain := plainInputOf(op.route.Operation, op.route.PathItem.Parameters)
		if plain == nil {
			continue
		}
		for _, v := range values {
			for _, suffix := range suffixes {
				for _, header := range []string{"", "If-None-Match"} {
					target := strings.NewReplacer("{id}", v, "{delivery_id}", v).Replace(op.path) + suffix
					r := httptest.NewRequest(op.method, "/", nil)
					r.URL.Path, r.URL.RawQuery, _ = strings.Cut(target, "?")
					if header != "" {
						r.Header.Set(header, `"1"`)
					}
					var names, vals []string
					for _, ip := range plain.ints {
						names, vals = append(names, ip.name), append(vals, v)
					}
					validated := r.Clone(r.Context())
					if !plain.accepts(r, names, vals) {
						slow++
						continue
					}
					fast++
					c := echo.New().NewContext(validated, httptest.NewRecorder())
					c.SetPath(op.echoPath())
					c.SetParamNames(names...)
					c.SetParamValues(vals...)
					if err := newValidator(newJSONShape(0, 0)).validate(c, op); err != nil {
						t.Errorf("%s %s: taken as plain, but the validator refuses it: %v", op.id, target, err)
					}
					if r.URL.RawQuery != validated.URL.RawQuery || !reflect.DeepEqual(r.Header, validated.Header) {
						t.Errorf("%s %s: taken as plain with query %q and header %v; the validator makes them %q and %v",
							op.id, target, r.URL.RawQuery, r.Header, validated.URL.RawQuery, validated.Header)
					}
				}
			}
		}
	}
	if fast == 0 || slow == 0 {
		t.Errorf("plain %d, validated %d: want some of each", fast, slow)
	}
}

// The operations plainInput covers, and those it leaves to the validator.
func TestPlainInput_Covers(t *testing.T) {
	t.Parallel()
	ops := mustOperations(t)
	for id, want := range map[string]bool{"getUser": true, "listUsers": true, "createUser": false, "updateUser": false} {
		op, ok := ops[id]
		if !ok {
			t.Fatalf("no operation %s", id)
		}
		if got := plainInputOf(op.route.Operation, op.route.PathItem.Parameters) != nil; got != want {
			t.Errorf("%s covered = %v, want %v", id, got, want)
		}
	}
}
