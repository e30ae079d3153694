package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"userapi/gen"
	"userapi/store"
)

// problemContentType is the media type of every error body (RFC 9457).
const problemContentType = "application/problem+json"

// statusOf is the one table from domain errors to HTTP status codes.
var statusOf = []struct {
	err    error
	status int
	kind   gen.ProblemType // when the status's own type (kindOfStatus) is too vague
	detail string          // said when the handler gave no detail of its own
	retry  bool            // answer with Retry-After: 1
}{
	{store.ErrNotFound, http.StatusNotFound, "", "the resource does not exist", false},
	{store.ErrConflict, http.StatusConflict, "", "the change conflicts with another resource", false},
	{store.ErrInProgress, http.StatusConflict, gen.ProblemsidempotencyKeyBusy, "a request with this Idempotency-Key is still being handled; retry after it has finished", true},
	{store.ErrPrecondition, http.StatusPreconditionFailed, "", "the resource has changed since the ETag given in If-Match", false},
	{store.ErrGone, http.StatusGone, "", "what was asked for is no longer kept", false},
	{store.ErrInvalidText, http.StatusUnprocessableEntity, "", "a text value is not valid UTF-8 or contains a NUL character", false},
	{store.ErrUnavailable, http.StatusServiceUnavailable, "", "the database is unavailable; retry shortly", true},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "", "the request took too long; retry shortly", true},
}

// publicError gives an error a detail that is safe to show to clients.
type publicError struct {
	err    error
	detail string
}

func (e *publicError) Error() string { return e.detail + ": " + e.err.Error() }
func (e *publicError) Unwrap() error { return e.err }

// withDetail wraps err with a client-facing detail, leaving its status to the
// table above.
func withDetail(err error, format string, args ...any) error {
	return &publicError{err: err, detail: fmt.Sprintf(format, args...)}
}

// problem is an error that already knows its HTTP answer.
type problem struct {
	gen.Problem
	header http.Header
	cause  error
}

func (p *problem) Error() string {
	if p.cause != nil {
		return p.Detail + ": " + p.cause.Error()
	}
	return p.Detail
}
func (p *problem) Unwrap() error { return p.cause }

// newProblem is a problem of the type its status has (kindOfStatus); typed
// gives it a more specific one.
func newProblem(status int, detail string) *problem {
	p := &problem{Problem: gen.Problem{Status: status, Detail: detail}}
	return p.typed(kindOfStatus[status])
}

// toProblem decides what the client sees for err. It never copies Go error
// text into the answer: details come from the table, from withDetail, or from
// the validator's field messages.
func toProblem(err error) *problem {
	var p *problem
	if errors.As(err, &p) {
		return p
	}
	if p := requestProblem(err); p != nil {
		return p
	}
	for _, row := range statusOf {
		if errors.Is(err, row.err) {
			detail := row.detail
			var pe *publicError
			if errors.As(err, &pe) {
				detail = pe.detail
			}
			p := newProblem(row.status, detail)
			if row.kind != "" {
				p.typed(row.kind)
			}
			if row.retry {
				p.header = http.Header{"Retry-After": {"1"}}
			}
			p.cause = err
			return p
		}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return httpErrorProblem(he)
	}
	p = newProblem(http.StatusInternalServerError, "the server failed to handle the request; it has been logged with its request id")
	p.cause = err
	return p
}

// httpErrorProblem turns Echo's own errors (router, body limit, binder) into
// problems with a fixed detail per status.
func httpErrorProblem(he *echo.HTTPError) *problem {
	var detail string
	switch he.Code {
	case http.StatusNotFound:
		detail = "no route matches this path"
	case http.StatusMethodNotAllowed:
		detail = "this path does not support this method; the Allow header lists those it does"
	case http.StatusRequestEntityTooLarge:
		detail = fmt.Sprintf("the body is larger than %d bytes", bodyLimit)
	case http.StatusUnsupportedMediaType:
		detail = "the body must be application/json"
	case http.StatusBadRequest:
		// The generated binder's messages embed parser errors; keep the
		// first clause, which names the parameter.
		msg, _ := he.Message.(string)
		detail, _, _ = strings.Cut(msg, ":")
		if detail == "" {
			detail = "the request is malformed"
		}
	default:
		if he.Code >= 500 {
			detail = "the server failed to handle the request; it has been logged with its request id"
		} else {
			detail = strings.ToLower(http.StatusText(he.Code))
		}
	}
	p := newProblem(he.Code, detail)
	p.cause = he
	return p
}

// errorHandler is Echo's HTTPErrorHandler: every error answer, from the
// router, the validator, a handler or a panic, leaves through here.
func errorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		req := c.Request()
		id := requestID(c)
		if clientGone(req) {
			// Nobody reads this answer: log and count it as what it is,
			// not as the failure the cancellation caused downstream.
			c.Response().Status = StatusClientClosedRequest
			logger.DebugContext(req.Context(), "client closed the request",
				"request_id", id, "method", req.Method, "path", req.URL.Path, "error", err)
			return
		}
		p := toProblem(err)
		p.Instance = &req.URL.Path
		if id != "" {
			p.RequestId = &id
		}
		if p.Status >= 500 {
			logger.LogAttrs(req.Context(), slog.LevelError, "request failed",
				slog.String("request_id", id), slog.String("method", req.Method), slog.String("path", req.URL.Path),
				slog.Int("status", p.Status), slog.Any("error", errorText{err}))
		} else if p.cause != nil {
			logger.LogAttrs(req.Context(), slog.LevelDebug, "request refused",
				slog.String("request_id", id), slog.Int("status", p.Status), slog.Any("error", errorText{p.cause}))
		}
		h := c.Response().Header()
		for k, v := range p.header {
			h[k] = v
		}
		h.Set(echo.HeaderContentType, problemContentType)
		// Answers to HEAD too: net/http sends the Content-Length of the
		// problem and drops its body.
		if err := c.JSON(p.Status, p.Problem); err != nil {
			logger.ErrorContext(req.Context(), "write error response", "request_id", id, "error", err.Error())
		}
	}
}

// errorText is an error's text, built only when a log line is written: the
// validator's errors print the whole offending value each, which is costly
// for a request refused with debug logging off.
type errorText struct{ err error }

func (e errorText) LogValue() slog.Value { return slog.StringValue(e.err.Error()) }

// StatusClientClosedRequest is the status recorded (never sent) for a
// request whose client went away before it was answered, as nginx does.
const StatusClientClosedRequest = 499

// clientGone reports whether the client closed the connection (or reset
// the stream) before the answer: net/http then cancels the request's context.
func clientGone(req *http.Request) bool {
	return errors.Is(req.Context().Err(), context.Canceled)
}
