package jobs

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A failed attempt is recorded by its category only, whatever the network
// said: these are real failures of the delivery client.
func TestFailureCategories(t *testing.T) {
	t.Parallel()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing := "http://" + closed.Addr().String()
	closed.Close()
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
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
		{"Refused", refusing, true, FailureConnect},
		{"NoSuchName", "http://no-such-host.invalid/hook", true, FailureConnect},
		{"NoAnswer", hanging.URL, true, FailureTimeout},
		{"UntrustedCertificate", untrusted.URL, true, FailureTLS},
		{"PrivateAddress", hanging.URL, false, FailureBlocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := newHTTPClient(timeout, tt.allowPrivate).Post(tt.url, "application/json", nil)
			if err == nil {
				res.Body.Close()
				t.Fatalf("POST %s answered %d, want a failure", tt.url, res.StatusCode)
			}
			if got := failure(err); got != tt.want {
				t.Errorf("failure(%v) = %q, want %q", err, got, tt.want)
			}
		})
	}
}
