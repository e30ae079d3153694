// Package webhook holds what both ends of a webhook agree on: the headers,
// the signature scheme, and which URLs a delivery may go to. Receivers
// written in Go can verify deliveries with Verify.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers of every delivery.
const (
	// HeaderEventID is the event's id: the same on every attempt to deliver
	// it, so receivers can drop duplicates.
	HeaderEventID = "Userapi-Event-Id"
	// HeaderTimestamp is when this attempt was signed, in Unix seconds.
	HeaderTimestamp = "Userapi-Timestamp"
	// HeaderSignature is "v1=" and the hex HMAC-SHA256, keyed with the
	// subscription's secret, of the timestamp, a ".", and the body.
	HeaderSignature = "Userapi-Signature"
)

// DefaultTolerance is how old a signature Verify accepts by default, which
// bounds how long a captured delivery can be replayed.
const DefaultTolerance = 5 * time.Minute

// Sign returns the HeaderSignature value for a body sent at ts.
func Sign(secret string, ts time.Time, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, strconv.FormatInt(ts.Unix(), 10), body))
}

func mac(secret, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of Verify.
var (
	ErrNoSignature  = errors.New("webhook: no signature or timestamp header")
	ErrBadSignature = errors.New("webhook: signature does not match")
	ErrTooOld       = errors.New("webhook: timestamp is outside the tolerance")
)

// Verify checks a delivery's signature against the secret, and that its
// timestamp is within tolerance of now (DefaultTolerance when zero). The
// signature header may carry several "v1=" values, comma-separated, so that
// a secret can be rotated; one match is enough.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts, sig := h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if ts == "" || sig == "" {
		return ErrNoSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrNoSignature
	}
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrTooOld
	}
	want := mac(secret, ts, body)
	for _, v := range strings.Split(sig, ",") {
		got, ok := strings.CutPrefix(strings.TrimSpace(v), "v1=")
		if !ok {
			continue
		}
		raw, err := hex.DecodeString(got)
		if err == nil && hmac.Equal(raw, want) {
			return nil
		}
	}
	return ErrBadSignature
}
