package server

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"userapi/gen"
)

// integerErrors names the integers of a validated JSON body that Go cannot
// hold although the validator accepted them: JSON Schema counts 1.0 and 1e3
// as integers, and compares 2^63 with a maximum of 2^63-1 as floats, which
// are equal. Left to the binder, they would be a 400 that names no field.
// It stops after one error more than an answer lists.
func integerErrors(value any, s *openapi3.Schema, loc string, out []gen.FieldError) []gen.FieldError {
	if s == nil || len(out) > maxFieldErrors {
		return out
	}
	switch v := value.(type) {
	case json.Number:
		if s.Type.Is("integer") {
			if _, err := strconv.ParseInt(string(v), 10, 64); err != nil {
				out = append(out, gen.FieldError{Location: loc, Message: integerMessage(s, v, err)})
			}
		}
	case []any:
		if s.Items != nil {
			for i, item := range v {
				out = integerErrors(item, s.Items.Value, loc+"."+strconv.Itoa(i), out)
			}
		}
	case map[string]any:
		for name, member := range v {
			if p := s.Properties[name]; p != nil {
				out = integerErrors(member, p.Value, loc+"."+name, out)
			}
		}
	}
	return out
}

func integerMessage(s *openapi3.Schema, value json.Number, err error) string {
	switch {
	case !errors.Is(err, strconv.ErrRange):
		return "must be an integer written in digits alone, such as 42"
	case strings.HasPrefix(string(value), "-"):
		return "must be at least " + bound(s.Min, math.MinInt64)
	default:
		return "must be at most " + bound(s.Max, math.MaxInt64)
	}
}

// bound words a schema's minimum or maximum; past 2^53 a float64 no longer
// holds every integer, and the bound meant is the int64's (2^63-1 would
// read 9223372036854776000).
func bound(f *float64, int64Bound int64) string {
	if f == nil || math.Abs(*f) >= 1<<53 {
		return strconv.FormatInt(int64Bound, 10)
	}
	return formatNumber(*f)
}
