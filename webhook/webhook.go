// Package webhook holds what both ends of a webhook agree on, which is the
// Standard Webhooks specification: the headers, the signature and the
// secrets' form; and how deliveries are sent: which addresses they may
// reach, and how a failed attempt is described. Receivers verify deliveries
// with any Standard Webhooks library.
package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Headers of every delivery, as Standard Webhooks names them.
const (
	// HeaderID is the message's id: the event's id, the same on every
	// attempt to deliver it, so receivers can drop duplicates.
	HeaderID = standardwebhooks.HeaderWebhookID
	// HeaderTimestamp is when this attempt was signed, in Unix seconds.
	HeaderTimestamp = standardwebhooks.HeaderWebhookTimestamp
	// HeaderSignature holds one "v1,<base64>" HMAC-SHA256 signature of
	// "id.timestamp.body" per secret that signs, separated by spaces.
	HeaderSignature = standardwebhooks.HeaderWebhookSignature
)

// secretPrefix starts every secret; the base64 after it is the key.
const secretPrefix = "whsec_"

// Key sizes a new secret may have, in bytes: the specification asks for
// 24 to 64.
const (
	MinKeyBytes = 24
	MaxKeyBytes = 64
	newKeyBytes = 32
)

// NewSecret returns a new random secret.
func NewSecret() string {
	b := make([]byte, newKeyBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// CheckSecret says what is wrong with a secret a subscriber chose, or
// returns nil: it must be "whsec_" and the standard base64 of a key of
// MinKeyBytes to MaxKeyBytes.
func CheckSecret(secret string) error {
	b64, ok := strings.CutPrefix(secret, secretPrefix)
	key, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil {
		return errors.New(`must be "whsec_" followed by standard base64 (with padding)`)
	}
	if len(key) < MinKeyBytes || len(key) > MaxKeyBytes {
		return fmt.Errorf("its key must be %d to %d bytes long, not %d", MinKeyBytes, MaxKeyBytes, len(key))
	}
	return nil
}

// Sign returns the HeaderSignature value for a message sent at ts: one
// signature for each secret, in the order given.
func Sign(id string, ts time.Time, body []byte, secrets ...string) (string, error) {
	sigs := make([]string, len(secrets))
	for i, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			return "", fmt.Errorf("webhook secret %d: %w", i+1, err)
		}
		if sigs[i], err = wh.Sign(id, ts, body); err != nil {
			return "", err
		}
	}
	return strings.Join(sigs, " "), nil
}
