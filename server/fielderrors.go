package server

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"

	"userapi/gen"
)

// requestProblem builds the problem for a request the validator refused, or
// returns nil when err did not come from the validator.
func requestProblem(err error) *problem {
	var reqErrs []*openapi3filter.RequestError
	var me openapi3.MultiError
	var re *openapi3filter.RequestError
	switch {
	case errors.As(err, &me):
		for _, e := range me {
			if errors.As(e, &re) {
				reqErrs = append(reqErrs, re)
			}
		}
	case errors.As(err, &re):
		reqErrs = append(reqErrs, re)
	}
	if len(reqErrs) == 0 {
		return nil
	}

	var fields []gen.FieldError
	for _, re := range reqErrs {
		// A body that cannot be read or parsed makes its schema errors moot:
		// answer with the first such problem alone.
		if p := bodyProblem(re); p != nil {
			p.cause = err
			return p
		}
		fields = append(fields, fieldErrors(re)...)
	}
	p := fieldsProblem(fields)
	p.cause = err
	return p
}

// fieldsProblem is the 422 listing fields, in order, at most maxFieldErrors.
func fieldsProblem(fields []gen.FieldError) *problem {
	sort.SliceStable(fields, func(i, j int) bool { return fields[i].Location < fields[j].Location })
	detail := validationDetail(fields)
	if len(fields) > maxFieldErrors {
		fields = fields[:maxFieldErrors]
		detail += fmt.Sprintf("; the first %d are listed", maxFieldErrors)
	}
	p := newProblem(http.StatusUnprocessableEntity, detail)
	p.Errors = &fields
	return p
}

// maxFieldErrors bounds the errors listed in one answer: a body with a
// thousand bad items needs no thousand-line reply.
const maxFieldErrors = 20

// bodyProblem answers for bodies that are too large, of the wrong type, or
// not JSON at all.
func bodyProblem(re *openapi3filter.RequestError) *problem {
	if re.RequestBody == nil {
		return nil
	}
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(re.Err, &he):
		return httpErrorProblem(he)
	case errors.As(re.Err, &mbe):
		return httpErrorProblem(echo.ErrStatusRequestEntityTooLarge)
	case re.Err == nil && strings.HasPrefix(re.Reason, "header Content-Type has unexpected value"):
		ct := re.Input.Request.Header.Get(echo.HeaderContentType)
		if ct == "" {
			return newProblem(http.StatusUnsupportedMediaType, "the body must be application/json, and the Content-Type header is missing")
		}
		return newProblem(http.StatusUnsupportedMediaType, fmt.Sprintf("the body must be application/json, not %.100s", ct))
	case re.Reason == "failed to decode request body" || re.Reason == "reading failed":
		return newProblem(http.StatusBadRequest, "the body is not valid JSON")
	}
	return nil
}

// fieldErrors names each bad field of one validator error.
func fieldErrors(re *openapi3filter.RequestError) []gen.FieldError {
	var prefix string
	switch {
	case re.Parameter != nil:
		prefix = re.Parameter.In + "." + re.Parameter.Name
	case re.RequestBody != nil:
		prefix = "body"
	default:
		return []gen.FieldError{{Location: "request", Message: "is invalid"}}
	}
	if errors.Is(re.Err, openapi3filter.ErrInvalidRequired) {
		if re.RequestBody != nil {
			return []gen.FieldError{{Location: prefix, Message: "a JSON body is required"}}
		}
		return []gen.FieldError{{Location: prefix, Message: "is required"}}
	}

	var schemaErrs []*openapi3.SchemaError
	var me openapi3.MultiError
	var se *openapi3.SchemaError
	switch {
	case errors.As(re.Err, &me):
		for _, e := range flatten(me) {
			if errors.As(e, &se) {
				schemaErrs = append(schemaErrs, se)
			}
		}
	case errors.As(re.Err, &se):
		schemaErrs = append(schemaErrs, se)
	}
	if len(schemaErrs) == 0 {
		return []gen.FieldError{{Location: prefix, Message: parameterMessage(re)}}
	}
	out := make([]gen.FieldError, 0, len(schemaErrs))
	for _, se := range schemaErrs {
		out = append(out, schemaFieldError(prefix, se)...)
	}
	return out
}

func flatten(me openapi3.MultiError) []error {
	var out []error
	for _, e := range me {
		var inner openapi3.MultiError
		if errors.As(e, &inner) {
			out = append(out, flatten(inner)...)
		} else {
			out = append(out, e)
		}
	}
	return out
}

// schemaFieldError locates a schema error inside the body or parameter and
// words it for a person. kin-openapi words errors differently depending on
// which of its validators ran, so the message is rebuilt from the failing
// keyword and schema rather than passed through.
func schemaFieldError(prefix string, se *openapi3.SchemaError) []gen.FieldError {
	loc := prefix
	for _, part := range se.JSONPointer() {
		loc += "." + part
	}
	s := se.Schema
	if s == nil {
		s = &openapi3.Schema{}
	}
	msg := ""
	switch se.SchemaField {
	case "additionalProperties", "properties":
		// The pointer stops at the object; name the unknown member itself.
		if names := quotedNames(se.Reason); len(names) > 0 {
			return []gen.FieldError{{Location: loc + "." + names[0], Message: "is not a known field"}}
		}
		msg = "has a field that is not known"
	case "required":
		// One validator puts the missing member in the pointer, the other
		// names them all in its reason.
		names := quotedNames(se.Reason)
		if len(names) == 1 && strings.HasSuffix(loc, "."+names[0]) {
			names = nil
		}
		if len(names) == 0 {
			return []gen.FieldError{{Location: loc, Message: "is required"}}
		}
		out := make([]gen.FieldError, len(names))
		for i, name := range names {
			out[i] = gen.FieldError{Location: loc + "." + name, Message: "is required"}
		}
		return out
	case "nullable":
		msg = "must not be null"
	case "type":
		msg = "must be " + typeName(s.Type)
	case "format":
		if s.Format == "email" {
			msg = "must be a valid email address"
		} else {
			msg = "must be a valid " + s.Format
		}
	case "minLength":
		msg = "must be at least " + plural(s.MinLength, "character")
	case "maxLength":
		if s.MaxLength != nil {
			msg = "must be at most " + plural(*s.MaxLength, "character")
		}
	case "minimum":
		if s.Min != nil {
			msg = "must be at least " + bound(s.Min, math.MinInt64)
		}
	case "maximum":
		if s.Max != nil {
			msg = "must be at most " + bound(s.Max, math.MaxInt64)
		}
	case "pattern":
		// A pattern says nothing to people: the spec words it beside it.
		msg, _ = s.Extensions["x-pattern-message"].(string)
	case "minItems":
		msg = "must have at least " + plural(s.MinItems, "item")
	case "maxItems":
		if s.MaxItems != nil {
			msg = "must have at most " + plural(*s.MaxItems, "item")
		}
	case "minProperties":
		msg = "must have at least " + plural(s.MinProps, "field")
	case "enum":
		vals := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			vals[i] = fmt.Sprint(v)
		}
		msg = "must be one of: " + strings.Join(vals, ", ")
	}
	if msg == "" {
		msg = "does not match the schema (" + se.SchemaField + ")"
	}
	return []gen.FieldError{{Location: loc, Message: msg}}
}

// quotedNames reads the quoted names at the end of a validator's reason,
// such as `property "x" is missing` or `error at "": missing properties
// 'x', 'y'`.
func quotedNames(reason string) []string {
	if i := strings.LastIndex(reason, ": "); i >= 0 && strings.HasPrefix(reason, "error at ") {
		reason = reason[i+2:]
	}
	var names []string
	for {
		i := strings.IndexAny(reason, `"'`)
		if i < 0 {
			return names
		}
		name, rest, ok := strings.Cut(reason[i+1:], reason[i:i+1])
		if !ok {
			return names
		}
		if name != "" {
			names = append(names, name)
		}
		reason = rest
	}
}

func typeName(t *openapi3.Types) string {
	switch {
	case t == nil:
		return "of another type"
	case t.Is("integer"):
		return "an integer"
	case t.Is("array"):
		return "an array"
	case t.Is("object"):
		return "an object"
	case t.Includes("string"):
		return "a string"
	case t.Is("number"):
		return "a number"
	case t.Is("boolean"):
		return "true or false"
	}
	return "of another type"
}

// plural words a count for people: "1 character", "2 characters".
func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatUint(n, 10) + " " + noun + "s"
}

func formatNumber(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// parameterMessage words a parameter that could not be parsed at all.
func parameterMessage(re *openapi3filter.RequestError) string {
	if re.Parameter != nil && re.Parameter.Schema != nil && re.Parameter.Schema.Value != nil {
		if t := re.Parameter.Schema.Value.Type; t != nil && t.Is("integer") {
			return "must be an integer"
		}
	}
	return "is invalid"
}

func validationDetail(fields []gen.FieldError) string {
	if len(fields) == 1 {
		return fmt.Sprintf("%s %s", fields[0].Location, fields[0].Message)
	}
	return fmt.Sprintf("the request has %d invalid fields", len(fields))
}
