package server

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// plainInput recognises, without the general validator, the commonest
// valid request to an operation that takes no body: no query string, none
// of its header parameters, and path parameters that are integers within
// their bounds, such as GET /users/{id}. Anything else, valid or not, goes
// to the validator, which alone words the errors.
type plainInput struct {
	headers []string   // the operation's header parameters: any present needs the validator
	ints    []intParam // its path parameters
	// defaults is the query string the validator would write in for a
	// request without one: the query parameters' defaults.
	defaults string
}

type intParam struct {
	name     string
	min, max float64
}

// plainInputOf is op's plainInput, or nil when op takes a body, a cookie,
// a required query or header parameter, or a path parameter other than a
// bounded integer.
func plainInputOf(op *openapi3.Operation, pathLevel openapi3.Parameters) *plainInput {
	if op.RequestBody != nil {
		return nil
	}
	p := &plainInput{}
	defaults := url.Values{}
	for _, params := range []openapi3.Parameters{pathLevel, op.Parameters} {
		for _, ref := range params {
			param := ref.Value
			switch {
			case param == nil:
				return nil
			case param.In == openapi3.ParameterInPath:
				ip, ok := boundedInt(param)
				if !ok {
					return nil
				}
				p.ints = append(p.ints, ip)
			case param.Required || param.In == openapi3.ParameterInCookie || param.Schema == nil || param.Schema.Value == nil:
				return nil
			case param.In == openapi3.ParameterInHeader:
				if param.Schema.Value.Default != nil {
					return nil
				}
				p.headers = append(p.headers, http.CanonicalHeaderKey(param.Name))
			case param.In == openapi3.ParameterInQuery:
				s := param.Schema.Value
				if len(s.AllOf) > 0 {
					return nil
				}
				switch d := s.Default.(type) {
				case nil:
				case string, bool, float64, int, int64:
					defaults.Set(param.Name, fmt.Sprint(d))
				default:
					return nil // a list or an object: the validator's to write
				}
			}
		}
	}
	p.defaults = defaults.Encode()
	return p
}

// boundedInt is param's integer schema, if that is all it asks: a type, a
// format, and bounds.
func boundedInt(param *openapi3.Parameter) (intParam, bool) {
	if param.Schema == nil || param.Schema.Value == nil || param.Content != nil {
		return intParam{}, false
	}
	s := param.Schema.Value
	rest := *s // what the schema asks beyond type, format and bounds
	rest.Type, rest.Format, rest.Min, rest.Max = nil, "", nil, nil
	rest.Title, rest.Description, rest.Example, rest.Extensions = "", "", nil, nil
	if !s.Type.Is(openapi3.TypeInteger) || (s.Format != "int64" && s.Format != "int32") || !reflect.DeepEqual(rest, openapi3.Schema{}) {
		return intParam{}, false
	}
	ip := intParam{name: param.Name, min: math.Inf(-1), max: math.Inf(1)}
	if s.Min != nil {
		ip.min = *s.Min
	}
	if s.Max != nil {
		ip.max = *s.Max
	}
	if s.Format == "int32" {
		ip.min, ip.max = max(ip.min, math.MinInt32), min(ip.max, math.MaxInt32)
	}
	return ip, true
}

// accepts reports whether r, with path parameters names = values, is such
// a request, and then writes in the defaults of the query parameters, as
// the validator would; false only means the validator must look.
func (p *plainInput) accepts(r *http.Request, names, values []string) bool {
	if r.URL.RawQuery != "" || r.ContentLength > 0 {
		return false
	}
	for _, h := range p.headers {
		if _, ok := r.Header[h]; ok {
			return false
		}
	}
	if len(names) != len(p.ints) {
		return false
	}
	for i, ip := range p.ints {
		if names[i] != ip.name {
			return false
		}
		v := values[i]
		if v == "" || strings.TrimLeft(v, "0123456789") != "" {
			return false // signs and escapes are the validator's
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || float64(n) < ip.min || float64(n) > ip.max {
			return false
		}
	}
	if p.defaults != "" {
		r.URL.RawQuery = p.defaults
	}
	return true
}
