package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// integerErrors finds the integer literals an int64 cannot hold, at any
// depth, and words the bound by the side the value overflows.
func TestIntegerErrors(t *testing.T) {
	t.Parallel()
	one := 1.0
	integer := &openapi3.Schema{Type: &openapi3.Types{"integer"}}
	positive := &openapi3.Schema{Type: &openapi3.Types{"integer"}, Min: &one}
	number := &openapi3.Schema{Type: &openapi3.Types{"number"}}
	schema := &openapi3.Schema{Type: &openapi3.Types{"object"}, Properties: openapi3.Schemas{
		"n":   {Value: integer},
		"ids": {Value: &openapi3.Schema{Type: &openapi3.Types{"array"}, Items: &openapi3.SchemaRef{Value: positive}}},
		"f":   {Value: number},
	}}
	for _, tc := range []struct{ body, want string }{
		{`{"n": 7, "ids": [1, 2], "f": 1.5}`, "[]"},
		{`{"f": 1e3}`, "[]"},
		{`{"n": 1.0}`, "[{body.n must be an integer written in digits alone, such as 42}]"},
		{`{"n": -9223372036854775809}`, "[{body.n must be at least -9223372036854775808}]"},
		{`{"n": 9223372036854775808}`, "[{body.n must be at most 9223372036854775807}]"},
		{`{"ids": [1, -99999999999999999999]}`, "[{body.ids.1 must be at least 1}]"},
		{`{"other": 1.0}`, "[]"},
	} {
		dec := json.NewDecoder(strings.NewReader(tc.body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(integerErrors(v, schema, "body", nil)); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.body, got, tc.want)
		}
	}
}
