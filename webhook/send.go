package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Client sends deliveries: without a proxy from the environment, without
// following redirects (a redirect could lead to a private address), and
// unless private addresses are allowed, without connecting to one.
type Client struct {
	http *http.Client
}

// NewClient returns a client whose attempts each take at most timeout,
// connecting included.
func NewClient(timeout time.Duration, allowPrivate bool) *Client {
	dialer := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		dialer.Control = PublicOnly
	}
	return &Client{http: &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Message is one delivery: its id (HeaderID), its JSON body, and the secrets
// that sign it, each adding a signature.
type Message struct {
	ID      string
	Body    []byte
	Secrets []string
}

// Result is what one attempt got.
type Result struct {
	// StatusCode is the receiver's answer; 0 when none came.
	StatusCode int
	// Latency is from sending to the answer, or to the failure.
	Latency time.Duration
}

// Send POSTs msg to url, signed now. When no answer came, the error is a
// *Failure; any answer, whatever its status, is no error.
func (c *Client) Send(ctx context.Context, url string, msg Message) (Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(msg.Body))
	if err != nil {
		return Result{}, fmt.Errorf("bad URL: %w", err)
	}
	now := time.Now()
	sig, err := Sign(msg.ID, now, msg.Body, msg.Secrets...)
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "userapi-webhooks/2")
	req.Header.Set(HeaderID, msg.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)

	res, err := c.http.Do(req)
	latency := time.Since(now)
	if err != nil {
		return Result{Latency: latency}, &Failure{Reason: reason(err), Err: err}
	}
	// Drain a little so the connection can be reused; the body means nothing.
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
	res.Body.Close()
	return Result{StatusCode: res.StatusCode, Latency: latency}, nil
}

// Failure is why an attempt got no answer. Its text is Reason alone, a
// category, which is all a subscriber sees (in the delivery log, the job's
// errors, an API answer): the network's own words would tell whoever can
// subscribe which internal resolvers exist and which hosts refuse rather
// than ignore a connection. Err has them, for the service's log.
type Failure struct {
	Reason string
	Err    error
}

func (f *Failure) Error() string { return f.Reason }
func (f *Failure) Unwrap() error { return f.Err }

// The reasons of a Failure.
const (
	FailureConnect = "connection failed" // no connection: DNS, refused, unreachable, dial timeout
	FailureTimeout = "timeout"           // connected, but no answer in time
	FailureTLS     = "tls"               // the TLS handshake failed, or the certificate
	FailureBlocked = "blocked address"   // the URL leads to an address deliveries may not reach
)

// reason is the category of a failed attempt's error.
func reason(err error) string {
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var record tls.RecordHeaderError
	var netErr net.Error
	switch {
	case errors.Is(err, ErrPrivateAddress):
		return FailureBlocked
	case errors.As(err, &opErr) && opErr.Op == "dial", errors.As(err, &dnsErr):
		return FailureConnect
	case errors.As(err, &certErr), errors.As(err, &alert), errors.As(err, &record):
		return FailureTLS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return FailureTimeout
	}
	return FailureConnect
}
