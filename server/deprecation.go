package server

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// deprecationHeaders are the headers a deprecated operation answers with:
// Deprecation (RFC 9745) from its x-deprecated-at date, and Sunset
// (RFC 8594) from its x-sunset date, both RFC 3339 dates in the spec.
func deprecationHeaders(op *openapi3.Operation) (http.Header, error) {
	if !op.Deprecated {
		return nil, nil
	}
	h := http.Header{}
	date := func(name string) (time.Time, bool, error) {
		s, ok := op.Extensions[name].(string)
		if !ok {
			return time.Time{}, false, nil
		}
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t, err = time.Parse(time.RFC3339, s)
		}
		if err != nil {
			return t, false, fmt.Errorf("%s of %s: %q is not a date", name, op.OperationID, s)
		}
		return t, true, nil
	}
	t, ok, err := date("x-deprecated-at")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("deprecated operation %s has no x-deprecated-at date", op.OperationID)
	}
	h.Set("Deprecation", "@"+strconv.FormatInt(t.Unix(), 10))
	if t, ok, err = date("x-sunset"); err != nil {
		return nil, err
	} else if ok {
		h.Set("Sunset", t.UTC().Format(http.TimeFormat))
	}
	return h, nil
}
