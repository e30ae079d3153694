package server

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"userapi/gen"
)

// Defaults of Options.JSONMaxKeys and Options.JSONMaxDepth.
const (
	DefaultJSONMaxKeys  = 1000
	DefaultJSONMaxDepth = 32
)

// jsonShape bounds how complex a JSON body may be. The validator's cost
// grows with the number of members and levels it reports errors for, so a
// small body with thousands of unknown fields, or nested thousands deep,
// is refused by a linear scan before the validator sees it.
type jsonShape struct {
	maxKeys  int // members in one object
	maxDepth int // objects and arrays inside one another
}

func newJSONShape(maxKeys, maxDepth int) jsonShape {
	if maxKeys <= 0 {
		maxKeys = DefaultJSONMaxKeys
	}
	if maxDepth <= 0 {
		maxDepth = DefaultJSONMaxDepth
	}
	return jsonShape{maxKeys: maxKeys, maxDepth: maxDepth}
}

// checkBody reads a JSON request body, checks its shape, and puts it back
// for the validator. Bodies of other types are left to the validator.
func (s jsonShape) checkBody(req *http.Request) error {
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if mt != echo.MIMEApplicationJSON && !strings.HasSuffix(mt, "+json") {
		return nil
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return err // the body limit's 413, or a broken connection
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	return s.check(body)
}

// check scans b once, without decoding it. It does not validate JSON:
// what it cannot make sense of is left to the decoder, which refuses it.
func (s jsonShape) check(b []byte) error {
	keys := make([]int, 0, min(s.maxDepth, 64)) // members so far per open level; -1 for arrays
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			if len(keys) == s.maxDepth {
				return validation(gen.FieldError{Location: "body", Message: "nests objects and arrays more than " + plural(uint64(s.maxDepth), "level") + " deep"})
			}
			open := 0
			if b[i] == '[' {
				open = -1
			}
			keys = append(keys, open)
		case '}', ']':
			if len(keys) == 0 {
				return nil
			}
			keys = keys[:len(keys)-1]
			if len(keys) == 0 && !onlySpace(b[i+1:]) {
				return newProblem(http.StatusBadRequest, "the body is not valid JSON: data follows the JSON value")
			}
		case ':':
			// Each member of an object has one colon at the object's level.
			if n := len(keys) - 1; n >= 0 && keys[n] >= 0 {
				if keys[n]++; keys[n] > s.maxKeys {
					return validation(gen.FieldError{Location: "body", Message: "has an object with more than " + plural(uint64(s.maxKeys), "field")})
				}
			}
		}
	}
	return nil
}

// onlySpace reports whether b is JSON whitespace alone.
func onlySpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}
