package webhook_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"userapi/webhook"
)

// A failed attempt is described by its category only, whatever the network
// said: these are real failures of the delivery client.
func TestSend_FailureCategories(t *testing.T) {
	t.Parallel()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing := "http://" + closed.Addr().String()
	closed.Close()
	// It reads the body first: until then, the server does not notice the
	// client hang up, and would wait for ever.
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(hanging.Close)
	untrusted := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(untrusted.Close)

	// Long enough for a handshake on a busy machine; NoAnswer waits it out.
	const timeout = 3 * time.Second
	tests := []struct {
		name         string
		url          string
		allowPrivate bool
		want         string
	}{
		{"Refused", refusing, true, webhook.FailureConnect},
		{"NoSuchName", "http://no-such-host.invalid/hook", true, webhook.FailureConnect},
		{"NoAnswer", hanging.URL, true, webhook.FailureTimeout},
		{"UntrustedCertificate", untrusted.URL, true, webhook.FailureTLS},
		{"PrivateAddress", hanging.URL, false, webhook.FailureBlocked},
	}
	msg := webhook.Message{ID: "msg_1", Body: []byte("{}"), Secrets: []string{webhook.NewSecret()}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := webhook.NewClient(timeout, tt.allowPrivate).Send(context.Background(), tt.url, msg)
			var f *webhook.Failure
			if !errors.As(err, &f) {
				t.Fatalf("Send(%s) = %+v, %v; want a *Failure", tt.url, res, err)
			}
			if f.Reason != tt.want || err.Error() != tt.want {
				t.Errorf("Send(%s) failure = %q (%q), want %q", tt.url, f.Reason, err.Error(), tt.want)
			}
		})
	}
}
