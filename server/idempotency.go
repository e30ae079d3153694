package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"userapi/gen"
	"userapi/store"
)

// Idempotency keys, after the IETF httpapi idempotency-key-header draft.
const (
	idempotencyHeader = "Idempotency-Key"
	replayedHeader    = "Idempotent-Replayed"
	maxIdempotencyKey = 255
	// DefaultIdempotencyTTL is how long a stored answer is replayed.
	DefaultIdempotencyTTL = 24 * time.Hour
)

// errNoIdempotency answers for requests with a key to a server built without
// a store for them: ignoring the key would break the promise it asks for.
var errNoIdempotency = errors.New("this server has no idempotency store")

// takesIdempotencyKey reports whether openapi.yaml gives the operation the
// Idempotency-Key header; those operations, and only those, get the middleware.
func takesIdempotencyKey(op *openapi3.Operation) bool {
	for _, p := range op.Parameters {
		if p.Value != nil && p.Value.In == openapi3.ParameterInHeader && http.CanonicalHeaderKey(p.Value.Name) == idempotencyHeader {
			return true
		}
	}
	return false
}

// idempotent runs a request that carries an Idempotency-Key at most once per
// key and scope. The request's effects and its stored answer share one
// transaction: both commit, or neither does. It runs after request
// validation, so only valid requests are fingerprinted and stored.
func idempotent(keys *store.Idempotency, ttl time.Duration) echo.MiddlewareFunc {
	if ttl <= 0 {
		ttl = DefaultIdempotencyTTL
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			values, sent := req.Header[idempotencyHeader]
			if !sent {
				return next(c)
			}
			key, ok := parseIdempotencyKey(values)
			if !ok {
				return validation(gen.FieldError{Location: "header." + idempotencyHeader,
					Message: "must be sent once, as 1 to 255 printable ASCII characters, bare or as a quoted string"})
			}
			if keys == nil {
				return errNoIdempotency
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return err // the body limit's 413, or a broken connection
			}
			req.Body = rewound(req.Body, body)
			fp := fingerprint(req.Method, req.URL.Path, body)

			ctx := req.Context()
			ktx, err := keys.Begin(ctx, caller(c).ID(), key)
			if err != nil {
				return err // store.ErrInProgress is a 409 with Retry-After
			}
			defer ktx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

			stored, found, err := ktx.Stored(ctx)
			if err != nil {
				return err
			}
			if found {
				_ = ktx.Rollback(ctx)
				if !bytes.Equal(stored.Fingerprint, fp) {
					return keyReused()
				}
				return replay(c, stored)
			}

			c.SetRequest(req.WithContext(ktx.Context(ctx)))
			res := c.Response()
			before := res.Header().Clone()
			buf := &bufferedWriter{header: res.Header()}
			orig := res.Writer
			res.Writer = buf
			err = next(c)
			res.Writer, res.Committed, res.Status, res.Size = orig, false, http.StatusOK, 0
			c.SetRequest(req)
			if err != nil {
				return err // rolled back: a retry runs the request again
			}
			if buf.status == 0 {
				buf.status = http.StatusOK // what net/http sends for a handler that wrote nothing
			}
			if buf.status < 200 || buf.status > 299 {
				_ = ktx.Rollback(ctx)
				return writeOut(c, buf.status, nil, buf.body.Bytes())
			}
			r := store.Response{Fingerprint: fp, Status: buf.status, Header: handlerHeaders(before, res.Header()), Body: buf.body.Bytes()}
			// The effect has happened: commit it with its record even if
			// the client has gone, so that its retry is answered from it.
			if err := ktx.Commit(context.WithoutCancel(ctx), r, ttl); err != nil {
				return err
			}
			return writeOut(c, r.Status, nil, r.Body)
		}
	}
}

// parseIdempotencyKey accepts one value: a Structured Field String ("abc",
// as the draft specifies) or, as most clients send it, the bare characters.
// Both name the same key.
func parseIdempotencyKey(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	v := strings.Trim(values[0], " \t")
	if strings.HasPrefix(v, `"`) {
		if len(v) < 2 || !strings.HasSuffix(v, `"`) {
			return "", false
		}
		var b strings.Builder
		inner := v[1 : len(v)-1]
		for i := 0; i < len(inner); i++ {
			ch := inner[i]
			switch {
			case ch == '\\':
				i++
				if i == len(inner) || (inner[i] != '"' && inner[i] != '\\') {
					return "", false
				}
				b.WriteByte(inner[i])
			case ch == '"' || ch < 0x20 || ch > 0x7e:
				return "", false
			default:
				b.WriteByte(ch)
			}
		}
		v = b.String()
	} else {
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				return "", false
			}
		}
	}
	if len(v) < 1 || len(v) > maxIdempotencyKey {
		return "", false
	}
	return v, true
}

// fingerprint identifies a request for its key: method, path and body.
func fingerprint(method, path string, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte(method + "\n" + path + "\n"))
	h.Write(body)
	return h.Sum(nil)
}

func keyReused() error {
	p := newProblem(http.StatusUnprocessableEntity,
		"this Idempotency-Key was already used with a different request (method, path or body); send a new key with a new request").
		typed(gen.ProblemsidempotencyKeyReused)
	p.Errors = &[]gen.FieldError{{Location: "header." + idempotencyHeader, Message: "was already used with a different request"}}
	return p
}

// replay sends a stored answer again, marked as such.
func replay(c echo.Context, r store.Response) error {
	return writeOut(c, r.Status, r.Header, r.Body)
}

func writeOut(c echo.Context, status int, header map[string][]string, body []byte) error {
	res := c.Response()
	h := res.Header()
	for k, v := range header {
		h[k] = v
	}
	if header != nil {
		h.Set(replayedHeader, "true")
	}
	res.WriteHeader(status)
	_, err := res.Write(body)
	return err
}

// perRequestHeaders are never stored: they describe this request, not its
// answer, or are computed again by the server.
var perRequestHeaders = map[string]bool{
	"X-Request-Id": true, "Date": true, "Content-Length": true, "Set-Cookie": true,
	"Connection": true, "Transfer-Encoding": true, "Retry-After": true, replayedHeader: true,
}

// handlerHeaders are the headers set while the handler ran (Content-Type,
// Location, ETag, ...): those are part of the answer. The ones set before it
// by other middleware (request id, rate limit, CORS) are left to each request.
func handlerHeaders(before, after http.Header) map[string][]string {
	out := map[string][]string{}
	for k, v := range after {
		if perRequestHeaders[k] || strings.HasPrefix(k, "Ratelimit-") || strings.HasPrefix(k, "Access-Control-") {
			continue
		}
		if old, ok := before[k]; ok && slices.Equal(old, v) {
			continue
		}
		out[k] = append([]string(nil), v...)
	}
	return out
}

// bufferedWriter holds a handler's answer until its transaction commits. It
// shares the real writer's header map, so headers need no copying.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferedWriter) Header() http.Header { return w.header }

func (w *bufferedWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *bufferedWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

// rewound gives back a body read in full, keeping the value the validator
// left on it (see ValidationOptions) so the handler does not decode it again.
func rewound(read io.ReadCloser, body []byte) io.ReadCloser {
	r := io.NopCloser(bytes.NewReader(body))
	if vb, ok := read.(interface{ ValidatedValue() any }); ok {
		return validatedBody{ReadCloser: r, value: vb.ValidatedValue()}
	}
	return r
}

type validatedBody struct {
	io.ReadCloser
	value any
}

func (b validatedBody) ValidatedValue() any { return b.value }
